//! Browser admin UI: askama templates and htmx fragments, embedded with
//! rust-embed, served on the public listener beside the JSON API. Built by
//! issue 6.
