use super::*;
use crate::domains::plan::normalize_txt;
use crate::remote::Failure;

fn msg(code: u32, message: &str) -> ApiMessage {
    ApiMessage {
        code,
        message: message.into(),
        error_chain: None,
    }
}

#[test]
fn txt_is_sent_as_one_escaped_quoted_string() {
    assert_eq!(quote_txt("v=spf1 -all"), "\"v=spf1 -all\"");
    assert_eq!(quote_txt(r#"say "hi" \o/"#), r#""say \"hi\" \\o/""#);
    for raw in ["v=DKIM1; k=rsa; p=AB", r#"a "b" \c"#, ""] {
        assert_eq!(normalize_txt(&quote_txt(raw)), raw);
    }
}

#[test]
fn paths_are_appended_to_a_base_with_a_path() {
    for base in [
        "http://127.0.0.1:8080/client/v4",
        "http://127.0.0.1:8080/client/v4/",
    ] {
        let url = endpoint(&parse_base(base).unwrap(), &["zones", "abc", "dns_records"]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/client/v4/zones/abc/dns_records"
        );
    }
    let bare = parse_base("https://api.example").unwrap();
    assert_eq!(
        endpoint(&bare, &["zones"]).as_str(),
        "https://api.example/zones"
    );
    // An id cannot climb out of its segment.
    let url = endpoint(&bare, &["zones", "../user"]);
    assert_eq!(url.path(), "/zones/..%2Fuser");
    for bad in ["ftp://x/client/v4", "not a url", "http://h/v4?x=1"] {
        assert!(parse_base(bad).is_err(), "{bad}");
    }
}

/// HTTP status, first error, Retry-After seconds, scope, expected error.
type Case<'a> = (
    u16,
    Option<ApiMessage>,
    Option<u64>,
    Scope<'a>,
    ProviderError,
);

#[test]
fn errors_map_to_what_the_person_must_do() {
    use ProviderError as E;
    let zone = Scope::Zone("z1");
    let records = Scope::Records("z1");
    let first = |c, m| Some(msg(c, m));
    let cases: Vec<Case<'_>> = vec![
        (
            400,
            first(81057, "Record already exists."),
            None,
            records,
            E::Rejected {
                code: 81057,
                message: "Record already exists.".into(),
            },
        ),
        (
            401,
            first(1000, "Invalid API Token"),
            None,
            Scope::Token,
            E::Unauthorized("Invalid API Token (Cloudflare code 1000)".into()),
        ),
        (
            400,
            first(9109, "Invalid access token"),
            None,
            zone,
            E::Unauthorized("Invalid access token (Cloudflare code 9109)".into()),
        ),
        (
            403,
            first(10000, "Authentication error"),
            None,
            records,
            E::MissingPermission {
                permission: "DNS:Edit",
                message: "Authentication error (Cloudflare code 10000)".into(),
            },
        ),
        (
            403,
            None,
            None,
            zone,
            E::MissingPermission {
                permission: "Zone:Read",
                message: "HTTP 403".into(),
            },
        ),
        (
            400,
            first(7003, "Could not route"),
            None,
            zone,
            E::ZoneNotFound("z1".into()),
        ),
        (404, None, None, records, E::ZoneNotFound("z1".into())),
        (
            404,
            first(81044, "Record does not exist."),
            None,
            records,
            E::Rejected {
                code: 81044,
                message: "Record does not exist.".into(),
            },
        ),
        (
            429,
            None,
            Some(7),
            zone,
            E::RateLimited(Duration::from_secs(7)),
        ),
        (429, None, None, zone, E::RateLimited(RATE_LIMIT_BLOCK)),
        (
            503,
            None,
            None,
            zone,
            E::Transient("HTTP 503: HTTP 503".into()),
        ),
        (
            422,
            None,
            None,
            Scope::Token,
            E::Rejected {
                code: 422,
                message: "HTTP 422".into(),
            },
        ),
    ];
    for (status, first, after, scope, want) in cases {
        let got = classify(
            status,
            first.as_ref(),
            after.map(Duration::from_secs),
            scope,
        );
        assert_eq!(got, want, "HTTP {status} {first:?}");
    }
}

#[test]
fn the_envelope_keeps_five_digit_codes_and_unknown_types() {
    let body = r#"{"success":false,"errors":[{"code":6003,"message":"Invalid request headers",
        "error_chain":[{"code":6111,"message":"Invalid format for Authorization header"}]},
        {"code":81057,"message":"Record already exists."}],"messages":[],"result":null}"#;
    let env: Envelope = serde_json::from_str(body).unwrap();
    let errors = env.errors.unwrap();
    assert_eq!(errors[1].code, 81057);
    assert_eq!(
        errors[0].describe(),
        "Invalid request headers; Invalid format for Authorization header (code 6111)"
    );

    let body = r#"{"success":true,"errors":[],"messages":[],"result":[
        {"id":"r1","type":"CAA","name":"a.example","content":"0 issue \"x\"","proxiable":false,
         "settings":{},"meta":{},"tags":[],"priority":null,"comment":null,"new_field":1},
        {"id":"r2","type":"MX","name":"a.example","content":"mail.a.example","priority":10}],
        "result_info":{"page":1,"per_page":100,"count":2,"total_count":2,"total_pages":1}}"#;
    let env: Envelope = serde_json::from_str(body).unwrap();
    assert_eq!(env.result_info.unwrap().total_pages, 1);
    let records: Vec<WireRecord> = serde_json::from_value(env.result).unwrap();
    let records: Vec<ExistingRecord> = records.into_iter().map(Into::into).collect();
    assert_eq!(records[0].record_type, "CAA");
    assert_eq!(records[1].priority, Some(10));

    // A pending zone: activated_on is null, name_servers may be too.
    let zone: WireZone = serde_json::from_str(
        r#"{"id":"z","name":"a.example","status":"pending","activated_on":null,"name_servers":null}"#,
    )
    .unwrap();
    assert_eq!(Zone::from(zone).name_servers, Vec::<String>::new());
}

#[test]
fn provider_errors_map_to_retry_failures() {
    let p = RetryPolicy::default();
    let transient = ProviderError::Transient("x".into());
    assert_eq!(p.wait(transient.failure(), 1), Some(Duration::from_secs(2)));
    let blocked = ProviderError::RateLimited(RATE_LIMIT_BLOCK);
    assert_eq!(p.wait(blocked.failure(), 1), None);
    let rejected = ProviderError::Rejected {
        code: 81057,
        message: "x".into(),
    };
    assert_eq!(rejected.failure(), Failure::Final);
}

fn new_record(t: RecordType, name: &str, content: &str, priority: Option<u16>) -> NewRecord {
    NewRecord {
        record_type: t,
        name: name.into(),
        content: content.into(),
        priority,
    }
}

#[test]
fn batches_carry_cloudflare_fields_and_chunk_in_order() {
    let mx = new_record(RecordType::MX, "a.example", "mail.a.example", Some(10));
    let txt = new_record(RecordType::TXT, "a.example", "v=spf1 -all", None);
    let changes = ChangeSet {
        deletes: vec!["old".into()],
        patches: vec![("p1".into(), txt.clone())],
        posts: vec![mx],
    };
    let bodies = batch_bodies(&changes);
    assert_eq!(
        bodies,
        vec![json!({
            "deletes": [{"id": "old"}],
            "patches": [{"id": "p1", "type": "TXT", "name": "a.example",
                         "content": "\"v=spf1 -all\"", "ttl": 1, "proxied": false}],
            "posts": [{"type": "MX", "name": "a.example", "content": "mail.a.example",
                       "ttl": 1, "proxied": false, "priority": 10,
                       "comment": MANAGED_COMMENT}],
        })]
    );
    assert!(batch_bodies(&ChangeSet::default()).is_empty());

    let big = ChangeSet {
        deletes: (0..150).map(|i| format!("d{i}")).collect(),
        patches: Vec::new(),
        posts: vec![txt; 300],
    };
    let bodies = batch_bodies(&big);
    let len = |b: &Value, k: &str| b.get(k).and_then(Value::as_array).map_or(0, Vec::len);
    let shape: Vec<(usize, usize)> = bodies
        .iter()
        .map(|b| (len(b, "deletes"), len(b, "posts")))
        .collect();
    assert_eq!(shape, vec![(150, 50), (0, 200), (0, 50)]);
}
