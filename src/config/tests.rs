//! The configuration's own tests: defaults, layers, refusals.

use super::*;
use crate::digest::sha256;
use std::collections::HashMap;

fn load_with(vars: &[(&str, &str)], file: Option<&Path>) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::load(file, |k| map.get(k).cloned())
}

#[test]
fn defaults_are_valid_and_match_the_contract() {
    let c = load_with(&[], None).unwrap();
    assert_eq!(c.listen_addr().unwrap().to_string(), "0.0.0.0:3002");
    assert_eq!(c.service_tokens["etl"].expose(), "l5-etl-token");
    assert_eq!(c.service_tokens["faas"].expose(), "faas-token");
    assert_eq!(c.service_tokens["function"].expose(), "function-token");
    assert_eq!(c.service_tokens["analytics"].expose(), "analytics-token");
    assert_eq!(c.server.max_connections, 10_000);
    assert_eq!(c.publish.max_event_bytes, 64 * 1024);
    assert_eq!(c.publish.max_body_bytes, 1024 * 1024);
    assert_eq!(c.publish.max_batch_events, 1000);
    assert_eq!(c.subscribe.max_channels, 32);
    assert_eq!(c.history.max_entries, 10_000);
    assert_eq!(c.history.max_age_minutes(), 1440);
    assert_eq!(c.history.store, StoreKind::Disk);
    assert!(c.subscribe.keepalive_secs <= 15);
    assert_eq!(Config::default().server.port, 3002);
}

#[test]
fn env_overrides() {
    let c = load_with(
        &[
            ("HOST", "127.0.0.1"),
            ("PORT", "8080"),
            ("MAX_CONNECTIONS", "5"),
            ("SERVICE_TOKENS", "billing=secret-one, etl = secret-two"),
            ("RUST_LOG", "debug"),
            ("TRUST_PROXY", "true"),
        ],
        None,
    )
    .unwrap();
    assert_eq!(c.listen_addr().unwrap().to_string(), "127.0.0.1:8080");
    assert_eq!(c.server.max_connections, 5);
    assert_eq!(c.service_tokens.len(), 2);
    assert_eq!(c.service_tokens["billing"].expose(), "secret-one");
    assert_eq!(c.log.filter, "debug");
    assert_eq!(c.server.trust_proxy, TrustProxy::XForwardedFor);
}

#[test]
fn bad_values_name_their_key() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("PORT", "abc")], "PORT"),
        (&[("PORT", "70000")], "PORT"),
        (&[("HOST", "not-an-ip")], "HOST"),
        (&[("MAX_CONNECTIONS", "0")], "MAX_CONNECTIONS"),
        (&[("MAX_CONNECTIONS", "-1")], "MAX_CONNECTIONS"),
        (&[("LOGGATE_ENV", "staging")], "LOGGATE_ENV"),
        (&[("SERVICE_TOKENS", "etl")], "SERVICE_TOKENS"),
        (&[("SERVICE_TOKENS", "etl=")], "SERVICE_TOKENS"),
        (&[("SERVICE_TOKENS", "e.tl=abcdefgh")], "SERVICE_TOKENS"),
        (
            &[("SERVICE_TOKENS", "a=abcdefgh,a=ijklmnop")],
            "SERVICE_TOKENS",
        ),
        (&[("SERVICE_TOKENS", "a=short")], "SERVICE_TOKENS"),
        (
            &[("SERVICE_TOKENS", "a=abcdefgh,b=abcdefgh")],
            "SERVICE_TOKENS",
        ),
        (&[("SERVICE_TOKENS", "")], "SERVICE_TOKENS"),
        (&[("LOG_FORMAT", "xml")], "LOG_FORMAT"),
        (&[("TRUST_PROXY", "maybe")], "TRUST_PROXY"),
        (&[("RUST_LOG", "=[")], "RUST_LOG"),
        (&[("NATS_URL", "localhost:4222")], "NATS_URL"),
        (&[("FLY_ORG", "myorg")], "ACCESS_TOKEN"),
        (&[("ACCESS_TOKEN", "t")], "FLY_ORG"),
        (&[("FLY_ORG", "my.org"), ("ACCESS_TOKEN", "t")], "FLY_ORG"),
        (&[("LOG_BUFFER_MAX_ENTRIES", "0")], "LOG_BUFFER_MAX_ENTRIES"),
        (
            &[("LOG_BUFFER_MAX_ENTRIES", "many")],
            "LOG_BUFFER_MAX_ENTRIES",
        ),
        (
            &[("LOG_BUFFER_MAX_AGE_MINUTES", "0")],
            "LOG_BUFFER_MAX_AGE_MINUTES",
        ),
        (&[("PUBLISH_RATE_PER_SEC", "fast")], "PUBLISH_RATE_PER_SEC"),
        (&[("CONNECT_RATE_PER_IP", "-1")], "CONNECT_RATE_PER_IP"),
        (&[("ALLOWED_ORIGINS", "app.example.com")], "ALLOWED_ORIGINS"),
        (
            &[("ALLOWED_ORIGINS", "https://app.example.com/")],
            "ALLOWED_ORIGINS",
        ),
        (
            &[("ALLOWED_ORIGINS", "https://*.example.com")],
            "ALLOWED_ORIGINS",
        ),
        (&[("ALLOWED_ORIGINS", ",")], "ALLOWED_ORIGINS"),
        (
            &[("JWT_SECRET", "s"), ("JWT_PUBLIC_KEY_FILE", "/x.pem")],
            "JWT_SECRET / JWT_PUBLIC_KEY_FILE",
        ),
        (&[("SERVICE_TOKENS", "a=sha256:nothex")], "SERVICE_TOKENS"),
        (&[("NATS_JETSTREAM", "true")], "NATS_JETSTREAM"),
        (
            &[("NATS_URL", "nats://n:4222"), ("NATS_JETSTREAM", "maybe")],
            "NATS_JETSTREAM",
        ),
        (
            &[("AI_BASE_URL", "openrouter.ai")],
            "ai.base_url (AI_BASE_URL)",
        ),
        (
            &[("AI_TOOLS_RETURN_LINES", "maybe")],
            "AI_TOOLS_RETURN_LINES",
        ),
        (&[("AI_RATE_PER_MINUTE", "lots")], "AI_RATE_PER_MINUTE"),
        (
            &[("OPENROUTER_API_KEY", "sk x")],
            "ai.api_key (OPENROUTER_API_KEY / AI_API_KEY)",
        ),
    ];
    for (vars, key) in cases {
        let err = load_with(vars, None).expect_err(&format!("{vars:?} should fail"));
        assert!(err.to_string().contains(key), "{vars:?}: {err}");
    }
}

#[test]
fn production_refusals_each_name_what_to_set() {
    let secure: &[(&str, &str)] = &[
        ("LOGGATE_ENV", "production"),
        ("SERVICE_TOKENS", "etl=a-real-secret"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("ALLOWED_ORIGINS", "https://app.example.com"),
        ("ADMIN_TOKEN", "an-admin-token-of-length"),
    ];
    let with = |over: &[(&str, &str)]| {
        let mut vars: Vec<(&str, &str)> = secure
            .iter()
            .filter(|(k, _)| !over.iter().any(|(o, _)| o == k))
            .copied()
            .collect();
        vars.extend(over.iter().filter(|(_, v)| !v.is_empty()));
        load_with(&vars, None)
    };
    assert!(with(&[]).is_ok(), "{:?}", with(&[]).err());
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("SERVICE_TOKENS", "etl=l5-etl-token")], "dev token"),
        (&[("JWT_SECRET", "")], "open subscriptions"),
        (
            &[("JWT_SECRET", "short-secret")],
            "JWT_SECRET: needs at least 32 bytes",
        ),
        (
            &[("AUTH_TOKEN", "x")],
            "AUTH_TOKEN: needs at least 32 characters",
        ),
        (&[("ALLOWED_ORIGINS", "*")], "ALLOWED_ORIGINS: * is refused"),
        (&[("ADMIN_TOKEN", "short")], "at least 16"),
    ];
    for (over, want) in cases {
        let err = with(over).expect_err(&format!("{over:?} should be refused"));
        assert!(err.to_string().contains(want), "{over:?}: {err}");
    }
    // A dev token configured as its digest is still a dev token.
    let digest = hex::encode(sha256(b"faas-token"));
    let hashed = format!("faas=sha256:{digest}");
    let err = with(&[("SERVICE_TOKENS", &hashed)]).unwrap_err();
    assert!(err.to_string().contains("dev token"), "{err}");
    // AUTH_TOKEN alone closes subscriptions too.
    assert!(
        with(&[
            ("JWT_SECRET", ""),
            ("AUTH_TOKEN", "a-static-ops-token-of-32-characters")
        ])
        .is_ok()
    );
    // Everything wrong is reported in one go.
    let err = with(&[
        ("SERVICE_TOKENS", "etl=l5-etl-token,faas=faas-token"),
        ("JWT_SECRET", "short-secret"),
        ("AUTH_TOKEN", "x"),
        ("ALLOWED_ORIGINS", "*"),
        ("ADMIN_TOKEN", "short"),
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("6 problem(s)"), "{err}");
    for key in [
        "SERVICE_TOKENS",
        "JWT_SECRET",
        "AUTH_TOKEN",
        "ALLOWED_ORIGINS",
        "ADMIN_TOKEN",
    ] {
        assert!(err.contains(&format!("\n  {key}: ")), "{key}: {err}");
    }
    // Development keeps accepting what production refuses.
    assert!(load_with(&[("JWT_SECRET", "short")], None).is_ok());
}

#[test]
fn secrets_never_show_in_debug_output() {
    let c = load_with(
        &[
            ("JWT_SECRET", "super-secret-value"),
            ("ADMIN_TOKEN", "admin-secret-value"),
        ],
        None,
    )
    .unwrap();
    let text = format!("{c:?}");
    for secret in ["super-secret-value", "admin-secret-value", "l5-etl-token"] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
}

#[test]
fn file_layer_and_its_errors() {
    let dir = std::env::temp_dir().join(format!("loggate-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "[server]\nport = 4000\n[subscribe]\nmax_channels = 8\n",
    )
    .unwrap();
    let c = load_with(&[], Some(&good)).unwrap();
    assert_eq!(c.server.port, 4000);
    assert_eq!(c.subscribe.max_channels, 8);
    assert_eq!(c.server.host, "0.0.0.0", "unset keys keep defaults");
    // The environment wins over the file.
    assert_eq!(
        load_with(&[("PORT", "5000")], Some(&good))
            .unwrap()
            .server
            .port,
        5000
    );

    let typo = dir.join("typo.toml");
    std::fs::write(&typo, "[server]\nprot = 4000\n").unwrap();
    let err = load_with(&[], Some(&typo)).unwrap_err().to_string();
    assert!(err.contains("prot"), "{err}");

    let wrong_type = dir.join("type.toml");
    std::fs::write(&wrong_type, "[server]\nport = \"high\"\n").unwrap();
    let err = load_with(&[], Some(&wrong_type)).unwrap_err().to_string();
    assert!(err.contains("server.port"), "{err}");

    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[nats.ingest]]\nsubject = \"a.>\"\nchannel = \"logs:{2}\"\n",
    )
    .unwrap();
    let err = load_with(&[], Some(&rules)).unwrap_err();
    assert_eq!(err.key, "nats.ingest", "rules need NATS_URL: {err}");
    assert!(load_with(&[("NATS_URL", "nats://127.0.0.1:4222")], Some(&rules)).is_ok());
    std::fs::write(
        &rules,
        "[[nats.ingest]]\nsubject = \"a.>\"\nchannel = \"logs:{0}\"\n",
    )
    .unwrap();
    let err = load_with(&[("NATS_URL", "nats://127.0.0.1:4222")], Some(&rules)).unwrap_err();
    assert_eq!(err.key, "nats.ingest[0]", "{err}");

    let err = load_with(&[], Some(&dir.join("missing.toml"))).unwrap_err();
    assert_eq!(err.key, "--config");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ai_settings_come_from_the_contracts_names() {
    let c = load_with(&[], None).unwrap();
    assert!(!c.ai.active(), "no key: chat is off");
    assert_eq!(c.ai.model, "moonshotai/kimi-k2");
    assert_eq!(c.ai.base_url, "https://openrouter.ai/api/v1");
    assert!(c.ai.tools_return_lines);
    let c = load_with(
        &[
            ("AI_API_KEY", "second"),
            ("OPENROUTER_API_KEY", "first"),
            ("OPENROUTER_MODEL", "llama3.1"),
            ("AI_BASE_URL", "http://localhost:11434/v1"),
            ("AI_TOOLS_RETURN_LINES", "false"),
            ("AI_RATE_PER_MINUTE", "3"),
        ],
        None,
    )
    .unwrap();
    assert!(c.ai.active());
    assert_eq!(c.ai.api_key.as_ref().unwrap().expose(), "first");
    assert_eq!(c.ai.model, "llama3.1");
    assert_eq!(c.ai.base_url, "http://localhost:11434/v1");
    assert!(!c.ai.tools_return_lines);
    assert_eq!(c.ai.rate_per_minute, 3);
    let c = load_with(&[("AI_API_KEY", "k")], None).unwrap();
    assert_eq!(c.ai.api_key.as_ref().unwrap().expose(), "k");
}

#[test]
fn jetstream_is_read_from_nats_jetstream_and_checked() {
    let c = load_with(&[], None).unwrap();
    assert!(!c.nats.jetstream, "off unless asked for");
    let url = ("NATS_URL", "nats://127.0.0.1:4222");
    let c = load_with(&[url, ("NATS_JETSTREAM", "true")], None).unwrap();
    assert!(c.nats.jetstream);
    assert_eq!(c.nats.stream, "LOGGATE");
    assert_eq!(c.nats.max_node_events_per_sec, 1_000_000);
    let c = load_with(&[url, ("NATS_JETSTREAM", "false")], None).unwrap();
    assert!(!c.nats.jetstream);

    let dir = std::env::temp_dir().join(format!("loggate-js-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (body, key) in [
        (
            "[nats]\njetstream = true\nstream = \"a.b\"\n",
            "nats.stream",
        ),
        ("[nats]\njetstream = true\nstream = \"\"\n", "nats.stream"),
        ("[nats]\nstream_max_bytes = 1000\n", "nats.stream_max_bytes"),
        (
            "[nats]\npublish_timeout_secs = 0\n",
            "nats.publish_timeout_secs",
        ),
        (
            "[nats]\npublish_timeout_secs = 301\n",
            "nats.publish_timeout_secs",
        ),
        (
            "[nats]\nmax_node_events_per_sec = 0\n",
            "nats.max_node_events_per_sec",
        ),
    ] {
        let file = dir.join("js.toml");
        std::fs::write(&file, body).unwrap();
        let err = load_with(&[url], Some(&file)).unwrap_err();
        assert_eq!(err.key, key, "{body}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn load_checked_with(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let all: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let map: HashMap<String, String> = all.iter().cloned().collect();
    Config::load_checked(None, |k| map.get(k).cloned(), &all)
}

#[test]
fn misspelt_names_warn_in_development_and_stop_production() {
    // Development starts, with the strays kept for the start-up warning:
    // the misspelt secret does not close subscriptions.
    let dev = load_checked_with(&[
        ("JWT_SECERT", "0123456789abcdef0123456789abcdef"),
        ("LOGGATE_ENVIRONMENT", "production"),
        ("PATH", "/usr/bin"),
    ])
    .unwrap();
    assert!(dev.auth.is_open());
    assert!(!dev.is_production());
    let told: Vec<String> = dev.stray_env.iter().map(ToString::to_string).collect();
    assert_eq!(
        told,
        [
            "JWT_SECERT is not a loggate setting and is ignored (did you mean JWT_SECRET?)",
            "LOGGATE_ENVIRONMENT is not a loggate setting and is ignored (did you mean LOGGATE_ENV?)",
        ]
    );
    // Production refuses, naming each stray with the rest of its problems.
    let err = load_checked_with(&[
        ("LOGGATE_ENV", "production"),
        ("SERVICE_TOKENS", "etl=a-real-secret"),
        ("JWT_SECERT", "0123456789abcdef0123456789abcdef"),
        ("AUTH_TOKNE", "0123456789abcdef0123456789abcdef"),
        ("ALLOWED_ORIGINS", "https://app.example.com"),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("JWT_SECERT: is not a loggate setting (did you mean JWT_SECRET?)"),
        "{err}"
    );
    assert!(
        err.contains("AUTH_TOKNE: is not a loggate setting (did you mean AUTH_TOKEN?)"),
        "{err}"
    );
    assert!(err.contains("open subscriptions are refused"), "{err}");
    assert!(err.contains("3 problem(s)"), "{err}");
    assert!(
        !err.contains("0123456789abcdef"),
        "values are never shown: {err}"
    );
    // The same production start with the names spelt right is accepted.
    load_checked_with(&[
        ("LOGGATE_ENV", "production"),
        ("SERVICE_TOKENS", "etl=a-real-secret"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("ALLOWED_ORIGINS", "https://app.example.com"),
        ("FLY_REGION", "ams"),
        ("NATS_PORT", "tcp://10.0.0.5:4222"),
    ])
    .unwrap();
}

#[test]
fn loggate_env_takes_exactly_the_documented_words_and_quotes_the_given_one() {
    for word in ["prod", "dev", "Production", "staging", "production "] {
        let result = load_with(&[("LOGGATE_ENV", word)], None);
        if word.trim() == "production" {
            // Surrounding blanks are a deploy file's, not a new word; the
            // dev tokens are then refused as production refuses them.
            let err = result.unwrap_err().to_string();
            assert!(err.contains("dev token"), "{err}");
            continue;
        }
        let err = result.expect_err(word).to_string();
        assert_eq!(
            err,
            format!("LOGGATE_ENV: {word:?} is not one of: production, development")
        );
    }
    assert!(
        !load_with(&[("LOGGATE_ENV", "development")], None)
            .unwrap()
            .is_production()
    );
    assert!(
        !load_with(&[("LOGGATE_ENV", "")], None)
            .unwrap()
            .is_production()
    );
}

#[test]
fn every_service_tokens_problem_is_reported_at_once_without_a_token() {
    let err = load_with(
        &[(
            "SERVICE_TOKENS",
            "etl=good-token-1,justatoken,b.ad=good-token-2,empty=,short=abc,etl=good-token-3,x=good-token-1",
        )],
        None,
    )
    .unwrap_err();
    assert_eq!(err.key, "SERVICE_TOKENS");
    let text = err.to_string();
    for want in [
        "6 problems:",
        "pair 2 has no '='",
        "pair 3: service name \"b.ad\"",
        "service \"empty\" has an empty token",
        "service \"short\": token is shorter than 8 characters",
        "service \"etl\" is listed twice",
        "services \"etl\" and \"x\" have the same token",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    for secret in ["good-token", "justatoken", "abc"] {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }
}

/// `[section]\nkey = value` files and the key each must be refused under.
fn refused_in_files(cases: &[(&str, &str)]) {
    let dir = std::env::temp_dir().join(format!(
        "loggate-refused-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for (body, key) in cases {
        let file = dir.join("refused.toml");
        std::fs::write(&file, body).unwrap();
        let err = load_with(&[], Some(&file)).unwrap_err();
        assert_eq!(err.key, *key, "{body}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_shipper_limits_are_read_and_checked() {
    let c = load_with(&[], None).unwrap();
    assert_eq!(c.ingest.max_body_bytes, 8 << 20);
    assert_eq!(c.ingest.max_batch_events, 10_000);
    assert!(
        c.ingest.max_batch_events as u64 <= 2 * u64::from(c.limits.publish_rate_per_sec),
        "the largest shipper request fits the event burst"
    );
    refused_in_files(&[
        ("[ingest]\nmax_body_bytes = 100\n", "ingest.max_body_bytes"),
        (
            "[ingest]\nmax_body_bytes = 100000000\n",
            "ingest.max_body_bytes",
        ),
        (
            "[ingest]\nmax_batch_events = 0\n",
            "ingest.max_batch_events",
        ),
        (
            "[ingest]\nmax_body_bytes = 33554432\n[history]\nmax_bytes = 16777216\n[subscribe]\nqueue_max_bytes = 33554432\n",
            "history.max_bytes",
        ),
        // A reader that keeps up must be able to take a whole request.
        (
            "[subscribe]\nqueue_max_events = 4096\n",
            "subscribe.queue_max_events",
        ),
        (
            "[ingest]\nmax_body_bytes = 33554432\n",
            "subscribe.queue_max_bytes",
        ),
    ]);
}

#[test]
fn publish_bytes_are_read_and_checked() {
    let c = load_with(&[], None).unwrap();
    assert_eq!(c.publish.bytes_per_sec, 4 << 20);
    assert!(
        c.ingest.max_body_bytes as u64 <= 2 * c.publish.bytes_per_sec,
        "the largest shipper request fits the byte burst"
    );
    let c = load_with(&[("PUBLISH_BYTES_PER_SEC", "0")], None).unwrap();
    assert_eq!(c.publish.bytes_per_sec, 0);
    let c = load_with(&[("PUBLISH_BYTES_PER_SEC", "10485760")], None).unwrap();
    assert_eq!(c.publish.bytes_per_sec, 10 << 20);
    for (value, key) in [
        ("fast", "PUBLISH_BYTES_PER_SEC"),
        ("-1", "PUBLISH_BYTES_PER_SEC"),
        ("100", "publish.bytes_per_sec (PUBLISH_BYTES_PER_SEC)"),
    ] {
        let err = load_with(&[("PUBLISH_BYTES_PER_SEC", value)], None).unwrap_err();
        assert_eq!(err.key, key, "{value}: {err}");
    }
    refused_in_files(&[
        (
            "[publish]\nlarge_body_slots = 0\n",
            "publish.large_body_slots",
        ),
        (
            "[publish]\nlarge_body_bytes = 10\n",
            "publish.large_body_bytes",
        ),
    ]);
}

#[test]
fn idempotency_keys_are_read_and_checked() {
    let c = load_with(&[], None).unwrap();
    assert_eq!(c.publish.idempotency_window_secs, 300);
    assert_eq!(c.publish.idempotency_max_keys, 100_000);
    let w = "publish.idempotency_window_secs";
    let k = "publish.idempotency_max_keys";
    refused_in_files(&[
        ("[publish]\nidempotency_window_secs = 0\n", w),
        ("[publish]\nidempotency_window_secs = 86401\n", w),
        ("[publish]\nidempotency_max_keys = 0\n", k),
        ("[publish]\nidempotency_max_keys = 10000001\n", k),
        // The stream must keep events as long as their keys are remembered.
        (
            "[publish]\nidempotency_window_secs = 3601\n[nats]\njetstream = true\nurl = \"nats://127.0.0.1:4222\"\n",
            w,
        ),
    ]);
    let dir = std::env::temp_dir().join(format!("loggate-idem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ok.toml");
    std::fs::write(
        &file,
        "[publish]\nidempotency_window_secs = 7200\nidempotency_max_keys = 5\n[nats]\njetstream = true\nurl = \"nats://127.0.0.1:4222\"\nstream_max_age_minutes = 0\n",
    )
    .unwrap();
    let c = load_with(&[], Some(&file)).unwrap();
    assert_eq!(c.publish.idempotency_window_secs, 7200);
    assert_eq!(c.publish.idempotency_max_keys, 5);
    std::fs::remove_dir_all(&dir).unwrap();
}
