//! Credential exports through the real server: each format parsed back,
//! passwords that really log in, ownership, expiry and the audit trail.

use chrono::Duration as Days;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::domains::{IPV4, world_with};
use crate::helpers::manual_clock;
use crate::inboxes::{Control, bulk, with_domain};

const HEADERS: [(&str, &str); 4] = [
    (
        "instantly_csv",
        "Email,First Name,Last Name,IMAP Username,IMAP Password,IMAP Host,IMAP Port,SMTP Username,SMTP Password,SMTP Host,SMTP Port,Daily Limit,Warmup Enabled,Warmup Limit,Warmup Increment",
    ),
    (
        "smartlead_csv",
        "from_name,from_email,user_name,password,smtp_host,smtp_port,imap_host,imap_port,max_email_per_day,custom_tracking_url,warmup_enabled,total_warmup_per_day,daily_rampup,reply_rate_percentage,bcc,signature,different_reply_to_address,imap_user_name,imap_password",
    ),
    (
        "replyio_csv",
        "email,senderName,smtpHost,smtpPort,smtpPassword,smtpSsl,imapHost,imapPort,imapPassword,imapSsl,dailyLimit",
    ),
    (
        "generic_csv",
        "Email,Password,SMTP_Host,SMTP_Port,SMTP_Username,IMAP_Host,IMAP_Port,IMAP_Username,Daily_Limit",
    ),
];

/// The password column of each format.
fn password_column(format: &str) -> &'static str {
    match format {
        "instantly_csv" => "SMTP Password",
        "smartlead_csv" => "password",
        "replyio_csv" => "smtpPassword",
        _ => "Password",
    }
}

async fn fetch(url: &str) -> (StatusCode, Option<String>, String) {
    let res = reqwest::get(url).await.unwrap();
    let status = res.status();
    let disposition = res
        .headers()
        .get("content-disposition")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, disposition, res.text().await.unwrap())
}

#[tokio::test]
async fn every_format_exports_credentials_that_log_in() {
    let clock = manual_clock();
    let w = world_with(Some(IPV4), Some(clock.clone())).await;
    let domain = with_domain(&w, "export.test").await;
    let (_, created) = bulk(
        &w,
        json!({ "domain_id": domain, "quantity": 2, "naming_scheme": "custom",
                "names": [{ "first_name": "Zoë", "last_name": "O'Brien-Smith" }, { "username": "ada" }] }),
    )
    .await;
    let ids: Vec<Value> = created["inboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["inbox_id"].clone())
        .collect();
    let kumo = Control::of(&w.app);

    for (format, header) in HEADERS {
        let (status, export) = w
            .app
            .post(
                "/api/v1/inboxes/export",
                json!({ "mailbox_ids": ids, "format": format, "include_passwords": true }),
                Some(&w.admin),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{export}");
        assert_eq!(
            (export["rows"].as_u64(), export["format"].as_str()),
            (Some(2), Some(format))
        );
        assert_eq!(
            export["columns"].as_array().unwrap().len(),
            header.split(',').count()
        );
        let (status, disposition, body) = fetch(export["file_url"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(disposition.unwrap().contains(".csv"));
        assert_eq!(body.lines().next().unwrap(), header, "{format}");
        let mut reader = csv::Reader::from_reader(body.as_bytes());
        let columns = reader.headers().unwrap().clone();
        let email_at = 0;
        let password_at = columns
            .iter()
            .position(|c| c == password_column(format))
            .unwrap();
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 2);
        for r in &records {
            let email = if format == "smartlead_csv" {
                &r[1]
            } else {
                &r[email_at]
            };
            let (status, _) = kumo.auth(email, &r[password_at]).await;
            assert_eq!(status, StatusCode::OK, "{format} {email}");
        }
        if format == "instantly_csv" {
            assert_eq!((&records[0][1], &records[0][2]), ("Zoë", "O'Brien-Smith"));
            assert_eq!(&records[0][12], "TRUE");
        }
    }

    // Without passwords the cells are empty; by domain works too.
    let (_, export) = w
        .app
        .post(
            "/api/v1/inboxes/export",
            json!({ "domain_id": domain, "format": "generic_csv", "include_passwords": false }),
            Some(&w.admin),
        )
        .await;
    let (_, _, body) = fetch(export["file_url"].as_str().unwrap()).await;
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r[1].is_empty()));

    // Links expire; unknown ones are simply not found.
    clock.advance(Days::hours(25));
    let (status, _, body) = fetch(export["file_url"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(!body.contains("export.test"));
    let (status, _, _) = fetch(&format!("{}/api/v1/exports/ige_made-up", w.app.base)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let rows = w.app.audit_rows(&w.admin).await;
    let downloads = rows
        .iter()
        .filter(|r| r["metadata"]["credential_export"] == "download")
        .count();
    let creations = rows
        .iter()
        .filter(|r| r["action"] == "POST /api/v1/inboxes/export")
        .count();
    assert_eq!((creations, downloads), (5, 5));
}

#[tokio::test]
async fn nobody_exports_someone_elses_mailboxes() {
    let w = world_with(Some(IPV4), None).await;
    let domain = with_domain(&w, "private.test").await;
    let (_, created) = bulk(&w, json!({ "domain_id": domain, "quantity": 1 })).await;
    let id = created["inboxes"][0]["inbox_id"].clone();
    let (_, eve) = w.app.member(&w.admin, "eve@example.com").await;
    for body in [
        json!({ "mailbox_ids": [id], "format": "instantly_csv" }),
        json!({ "domain_id": domain, "format": "instantly_csv" }),
    ] {
        let (status, answer) = w.app.post("/api/v1/inboxes/export", body, Some(&eve)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        assert!(answer.get("file_url").is_none());
    }
    let (status, answer) = w
        .app
        .post(
            "/api/v1/inboxes/export",
            json!({ "format": "instantly_csv" }),
            Some(&w.admin),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let (status, _) = w
        .app
        .post(
            "/api/v1/inboxes/export",
            json!({ "mailbox_ids": [id], "format": "excel" }),
            Some(&w.admin),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn bulk_creation_links_the_batch_credentials_as_a_csv() {
    let w = world_with(Some(IPV4), None).await;
    let domain = with_domain(&w, "batch.test").await;
    let (status, created) = bulk(
        &w,
        json!({ "domain_id": domain, "quantity": 3, "naming_scheme": "random" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let url = created["export_csv_url"].as_str().expect("a link");
    let (status, _, text) = fetch(url).await;
    assert_eq!(status, StatusCode::OK);
    let (_, generic) = HEADERS[3];
    assert_eq!(text.lines().next().unwrap(), generic);
    let mut file = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = file.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    for inbox in created["inboxes"].as_array().unwrap() {
        let row = rows
            .iter()
            .find(|r| r[0] == *inbox["email"].as_str().unwrap())
            .unwrap();
        assert_eq!(&row[1], inbox["password"].as_str().unwrap());
    }
}
