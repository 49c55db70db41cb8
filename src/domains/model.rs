//! The states a domain and its records move through.

use crate::types::name_enum;

name_enum!(
    /// pending → publishing → verifying → active (Cloudflare), or
    /// awaiting_dns → active (records created by hand); failed keeps why.
    DomainStatus {
        Pending => "pending",
        Publishing => "publishing",
        Verifying => "verifying",
        AwaitingDns => "awaiting_dns",
        Active => "active",
        Failed => "failed",
    }
);

name_enum!(
    /// Who publishes the records.
    DnsMode { Cloudflare => "cloudflare", Manual => "manual" }
);

name_enum!(
    /// Where one planned record stands.
    RecordState {
        Pending => "pending",
        Published => "published",
        Verified => "verified",
        Mismatch => "mismatch",
        Missing => "missing",
    }
);
