//! Traceability between `spec/SPEC.md` and the code: every requirement is well-formed; every
//! conformance check and lint rule is proven able to fail by a negative test named in
//! [`PROOFS`]; every requirement is proven checked that way, enforced by the types, or listed as
//! not mechanically checkable with a reason; and nothing cites a requirement that does not
//! exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rwgi_conformance::{app_suite, server_suite};

const SPEC: &str = include_str!("../spec/SPEC.md");

/// Every `REQ-AREA-N` token in `text`.
fn ids_in(text: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("REQ-") {
        let tail = &rest[start + 4..];
        let area_len = tail.bytes().take_while(u8::is_ascii_uppercase).count();
        let after_area = &tail[area_len..];
        let digits = after_area
            .strip_prefix('-')
            .map_or(0, |d| d.bytes().take_while(u8::is_ascii_digit).count());
        if area_len > 0 && digits > 0 {
            ids.push(format!(
                "REQ-{}-{}",
                &tail[..area_len],
                &after_area[1..1 + digits]
            ));
        }
        rest = &rest[start + 4..];
    }
    ids
}

/// The requirements the spec defines (`- **REQ-…** (KEYWORD) …`), with their keyword.
fn definitions(spec: &str) -> BTreeMap<String, String> {
    let mut defined = BTreeMap::new();
    for line in spec.lines() {
        let Some(rest) = line.strip_prefix("- **REQ-") else {
            continue;
        };
        let (id, rest) = rest.split_once("**").expect("closing ** after the ID");
        let keyword = rest
            .trim_start()
            .strip_prefix('(')
            .and_then(|k| k.split_once(')'))
            .map(|(k, _)| k.to_owned())
            .unwrap_or_else(|| panic!("REQ-{id} has no (KEYWORD)"));
        let previous = defined.insert(format!("REQ-{id}"), keyword);
        assert!(previous.is_none(), "REQ-{id} is defined twice");
    }
    defined
}

/// The section of the spec that begins with `heading` (up to the next heading of that level).
fn section<'a>(spec: &'a str, heading: &str) -> &'a str {
    let start = spec
        .find(heading)
        .unwrap_or_else(|| panic!("spec has {heading:?}"));
    let body = &spec[start + heading.len()..];
    let level = heading.split(' ').next().unwrap();
    let end = body
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .find(|&i| body[i..].starts_with(&format!("{level} ")))
        .unwrap_or(body.len());
    &body[..end]
}

/// The requirements a table section accounts for: the first cell of each row must be one ID,
/// and the reason cell must not be empty.
fn table_ids(spec: &str, heading: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for row in section(spec, heading)
        .lines()
        .filter(|l| l.starts_with("| REQ-"))
    {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 4, "row {row:?} has two cells");
        assert!(
            !cells[2].is_empty(),
            "{} has no reason in {heading:?}",
            cells[1]
        );
        ids.insert(cells[1].to_owned());
    }
    ids
}

/// Where a check or rule is shown failing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A check of `server_suite::CHECKS`, failed by a broken server in `tests/server_suite.rs`.
    Server,
    /// A check of `app_suite::CHECKS`, failed by a broken app or middleware in
    /// `tests/app_suite.rs`.
    App,
    /// A rule of `rwgi::lint::RULES`, made to fire in `tests/lint.rs`.
    Lint,
}

impl Kind {
    fn file(self) -> &'static str {
        match self {
            Kind::Server => "tests/server_suite.rs",
            Kind::App => "tests/app_suite.rs",
            Kind::Lint => "tests/lint.rs",
        }
    }

    /// The calls that assert a failure with its requirement ID; a proof must make one.
    fn asserting_calls(self) -> &'static [&'static str] {
        match self {
            // `warns_with(`: a SHOULD not met is a warning, asserted with its ID.
            Kind::Server => &[
                "fails_with(",
                "proxied_fails_with(",
                "assert_failed_alone(",
                "warns_with(",
            ],
            Kind::App => &[
                "assert_fails(",
                "assert_eq!(*outcome, Outcome::Fail)",
                "assert_eq!(\n        failed,",
            ],
            Kind::Lint => &["assert_eq!("],
        }
    }
}

/// The negative tests: a check (or lint rule), the test that shows it failing, and the
/// requirements that test asserts the failure names. `tests/spec.rs` fails when a check or
/// rule has no entry, when the test is missing, or when it does not assert the failure of that
/// check with those IDs; only the IDs here count as checked.
#[rustfmt::skip]
const PROOFS: &[(Kind, &str, &str, &[&str])] = &[
    (Kind::Server, "vectors_paths", "a_server_that_decodes_the_path_fails_req_path_1", &["REQ-PATH-1", "REQ-PATH-3", "REQ-PATH-4"]),
    (Kind::Server, "vectors_paths", "a_server_that_decodes_the_query_fails_req_env_5", &["REQ-ENV-5"]),
    (Kind::Server, "vectors_paths", "a_server_that_answers_a_raw_non_utf8_target_with_200_fails_req_path_7", &["REQ-PATH-7"]),
    (Kind::Server, "vectors_targets", "a_server_that_rewrites_absolute_form_fails_req_env_4", &["REQ-ENV-4", "REQ-ENV-8"]),
    (Kind::Server, "vectors_targets", "a_server_that_answers_bad_targets_with_200_fails_req_env_6_and_req_env_2", &["REQ-ENV-6", "REQ-ENV-2"]),
    (Kind::Server, "vectors_targets", "a_server_that_refuses_unknown_methods_fails_req_env_1", &["REQ-ENV-1"]),
    (Kind::Server, "vectors_targets", "a_server_that_calls_the_app_for_connect_fails_req_srv_12", &["REQ-SRV-12"]),
    (Kind::Server, "vectors_hosts", "a_server_that_invents_a_host_fails_req_env_3", &["REQ-ENV-3"]),
    (Kind::Server, "vectors_targets", "a_server_that_keeps_the_received_host_fails_req_env_14", &["REQ-ENV-14"]),
    (Kind::Server, "vectors_hosts", "a_server_that_calls_every_request_http_1_1_fails_req_env_11", &["REQ-ENV-11"]),
    (Kind::Server, "vectors_headers", "a_server_that_drops_repeated_request_headers_fails_req_env_7", &["REQ-ENV-7"]),
    (Kind::Server, "vectors_headers", "a_server_that_adds_a_header_fails_req_env_12", &["REQ-ENV-12"]),
    (Kind::Server, "vectors_headers", "a_server_that_rewrites_underscores_fails_req_env_7", &["REQ-ENV-7"]),
    (Kind::Server, "vectors_headers", "a_server_that_drops_content_type_fails_req_env_7", &["REQ-ENV-7"]),
    (Kind::Server, "vectors_bodies", "a_proxy_that_corrupts_request_bodies_fails_the_body_vectors_with_req_input_1", &["REQ-INPUT-1"]),
    (Kind::Server, "vectors_bodies", "a_proxy_that_hides_a_transfer_coding_fails_req_env_13", &["REQ-ENV-13"]),
    (Kind::Server, "vectors_mount", "a_server_that_ignores_the_root_path_fails_req_path_6", &["REQ-PATH-6"]),
    (Kind::Server, "input_large", "a_proxy_that_corrupts_an_upload_fails_req_input_1", &["REQ-INPUT-1"]),
    (Kind::Server, "input_partly_read", "a_server_that_reads_a_partly_read_body_as_requests_fails_req_input_4", &["REQ-INPUT-4"]),
    (Kind::Server, "input_unread", "a_server_that_reads_an_unread_body_as_requests_fails_req_input_4", &["REQ-INPUT-4"]),
    (Kind::Server, "input_client_gone", "a_server_that_pads_a_short_upload_fails_req_input_2", &["REQ-INPUT-2"]),
    (Kind::Server, "input_broken_chunked", "a_server_that_takes_a_broken_chunked_body_for_an_empty_one_fails_req_input_2", &["REQ-INPUT-2"]),
    (Kind::Server, "expect_continue", "a_proxy_that_answers_100_continue_itself_fails_req_input_5", &["REQ-INPUT-5"]),
    (Kind::Server, "connection_addresses", "a_server_that_swaps_the_addresses_fails_req_env_10", &["REQ-ENV-10"]),
    (Kind::Server, "connection_addresses", "a_server_that_hides_the_peer_address_fails_req_env_10_once", &["REQ-ENV-10"]),
    (Kind::Server, "connection_addresses", "a_server_that_resets_every_connection_fails_req_env_10_every_time", &["REQ-ENV-10"]),
    (Kind::Server, "response_content_length", "a_server_that_chunks_a_body_of_known_length_fails_req_srv_9", &["REQ-SRV-9"]),
    (Kind::Server, "response_chunked", "a_server_that_does_not_chunk_for_http_1_1_fails_req_srv_9", &["REQ-SRV-9"]),
    (Kind::Server, "response_close_delimited", "a_proxy_that_answers_http_1_0_as_1_1_fails_req_srv_9", &["REQ-SRV-9"]),
    (Kind::Server, "status_line_version", "a_server_that_answers_as_http_1_0_fails_req_srv_13", &["REQ-SRV-13"]),
    (Kind::Server, "response_streams", "a_server_that_buffers_the_body_warns_req_srv_11", &["REQ-SRV-11"]),
    (Kind::Server, "response_streams", "a_server_that_stops_after_the_first_chunk_fails_req_body_1", &["REQ-BODY-1"]),
    (Kind::Server, "response_empty_chunks", "a_server_that_sends_empty_chunks_fails_req_body_3", &["REQ-BODY-3"]),
    (Kind::Server, "head_no_body", "a_server_that_sends_a_body_for_head_fails_req_srv_6", &["REQ-SRV-6"]),
    (Kind::Server, "head_content_length", "a_server_that_leaves_content_length_off_head_answers_fails_req_srv_6", &["REQ-SRV-6"]),
    (Kind::Server, "no_body_204_304", "a_server_that_frames_a_204_fails_req_srv_6", &["REQ-SRV-6"]),
    (Kind::Server, "repeated_response_headers", "a_server_that_joins_repeated_headers_fails_req_srv_2", &["REQ-SRV-2"]),
    (Kind::Server, "illegal_head_hop_by_hop", "a_server_that_passes_hop_by_hop_headers_fails_req_srv_5", &["REQ-SRV-5", "REQ-RESP-2"]),
    (Kind::Server, "illegal_head_hop_by_hop", "a_server_that_passes_any_one_hop_by_hop_header_fails_req_srv_5", &["REQ-SRV-5", "REQ-RESP-2"]),
    (Kind::Server, "illegal_head_informational", "a_server_that_sends_an_informational_final_status_fails_req_srv_5", &["REQ-SRV-5", "REQ-RESP-1"]),
    (Kind::Server, "illegal_head_content_length", "a_server_that_sends_a_malformed_content_length_fails_req_srv_5", &["REQ-SRV-5", "REQ-RESP-3"]),
    (Kind::Server, "illegal_head_bodiless", "a_server_that_sends_a_204_with_a_length_fails_req_srv_5", &["REQ-SRV-5", "REQ-RESP-4"]),
    (Kind::Server, "error_before_first_chunk", "a_server_that_sends_the_head_before_a_failing_body_fails_req_err_2", &["REQ-ERR-2"]),
    (Kind::Server, "nothing_sent_before_first_chunk", "a_server_that_sends_the_head_early_fails_req_srv_4", &["REQ-SRV-4", "REQ-START-4"]),
    (Kind::Server, "error_after_first_chunk", "a_server_that_finishes_a_failed_body_fails_req_err_3", &["REQ-ERR-3"]),
    (Kind::Server, "content_length_mismatch", "a_server_that_ignores_a_length_mismatch_fails_req_srv_7", &["REQ-SRV-7"]),
    (Kind::Server, "content_length_mismatch", "a_server_that_stops_at_the_announced_length_fails_req_srv_7", &["REQ-SRV-7"]),
    (Kind::Server, "no_body_204_304", "a_server_that_refuses_a_304_with_the_get_length_fails_req_resp_5", &["REQ-RESP-5"]),
    (Kind::Server, "illegal_head_bodiless", "a_server_that_sends_a_body_for_205_fails_req_srv_5", &["REQ-SRV-5", "REQ-RESP-6"]),
    (Kind::Server, "error_before_first_chunk", "a_server_that_sends_the_head_early_for_a_known_length_fails_req_err_2", &["REQ-ERR-2"]),
    (Kind::Server, "nothing_sent_before_first_chunk", "a_server_that_sends_the_head_early_for_a_known_length_fails_req_srv_4", &["REQ-SRV-4"]),
    (Kind::Server, "body_dropped_after_completion", "a_server_that_keeps_bodies_fails_req_srv_8", &["REQ-SRV-8"]),
    (Kind::Server, "body_dropped_after_completion", "a_server_that_forgets_a_body_it_stopped_polling_fails_req_srv_8", &["REQ-SRV-8"]),
    (Kind::Server, "body_dropped_on_disconnect", "a_proxy_that_hides_a_client_gone_fails_req_srv_8_on_disconnect", &["REQ-SRV-8"]),
    (Kind::Server, "app_dropped_on_disconnect", "a_proxy_that_hides_a_client_gone_fails_req_conc_2", &["REQ-CONC-2"]),
    (Kind::Server, "keep_alive", "a_server_that_closes_every_connection_fails_req_srv_3", &["REQ-SRV-3"]),
    (Kind::Server, "pipelining", "a_server_that_drops_pipelined_requests_fails_req_srv_3", &["REQ-SRV-3"]),
    (Kind::Server, "pipelining", "a_server_that_calls_the_app_twice_fails_req_app_3", &["REQ-APP-3"]),
    (Kind::Server, "app_error", "a_server_that_leaks_error_details_fails_req_err_5", &["REQ-ERR-5"]),
    (Kind::Server, "app_panic", "a_server_that_lets_panics_through_fails_req_err_4", &["REQ-ERR-4"]),
    (Kind::Server, "multithread_consistent", "a_server_that_claims_one_thread_while_using_many_fails_req_conc_1_every_time", &["REQ-CONC-1"]),
    (Kind::Server, "multithread_consistent", "a_server_that_varies_its_server_info_fails_req_env_9", &["REQ-ENV-9"]),
    (Kind::Server, "disconnect_notified", "a_server_that_never_completes_gone_fails_req_disc_1", &["REQ-DISC-1"]),
    (Kind::Server, "disconnect_notified", "a_server_that_completes_gone_while_the_client_waits_fails_req_disc_2", &["REQ-DISC-2"]),
    (Kind::Server, "head_flushed", "a_server_that_ignores_flush_head_fails_req_interim_3", &["REQ-INTERIM-3"]),
    (Kind::Server, "interim_responses", "a_server_that_drops_interim_responses_fails_req_interim_2", &["REQ-INTERIM-2"]),
    (Kind::Server, "response_trailers", "a_server_that_drops_response_trailers_fails_req_trail_3", &["REQ-TRAIL-3"]),
    (Kind::Server, "response_trailers", "a_server_that_sends_unannounced_trailers_fails_req_trail_1", &["REQ-TRAIL-1"]),
    (Kind::Server, "illegal_trailer_names", "a_server_that_accepts_any_trailer_name_fails_req_trail_2", &["REQ-TRAIL-2"]),
    (Kind::Server, "request_trailers", "a_server_that_drops_request_trailers_fails_req_trail_4", &["REQ-TRAIL-4"]),
    (Kind::App, "final_status_not_informational", "informational_final_status_fails_resp_1", &["REQ-RESP-1"]),
    (Kind::App, "no_hop_by_hop_headers", "hop_by_hop_header_fails_resp_2", &["REQ-RESP-2"]),
    (Kind::App, "content_length_well_formed", "two_content_lengths_fail_resp_3", &["REQ-RESP-3"]),
    (Kind::App, "no_content_length_on_204", "content_length_on_204_fails_resp_4", &["REQ-RESP-4"]),
    (Kind::App, "content_length_matches_body", "content_length_mismatch_fails_resp_5", &["REQ-RESP-5"]),
    (Kind::App, "bodiless_status_empty_body", "body_for_204_fails_resp_6", &["REQ-RESP-6"]),
    (Kind::App, "answers_through_its_callback", "answering_through_a_start_response_of_ones_own_fails_start_1", &["REQ-START-1"]),
    (Kind::App, "body_length_exact", "lying_content_length_fails_body_4", &["REQ-BODY-4"]),
    (Kind::App, "body_streams_lazily", "a_body_that_stalls_fails_body_6", &["REQ-BODY-6"]),
    (Kind::App, "no_input_poll_after_end", "reading_input_after_its_end_fails_input_6", &["REQ-INPUT-6"]),
    (Kind::App, "no_panic", "panicking_app_fails_err_4", &["REQ-APP-5"]),
    (Kind::App, "answers_every_request", "an_app_that_never_answers_fails_app_4", &["REQ-APP-4"]),
    (Kind::App, "slow_reader", "a_middleware_that_changes_the_length_without_fixing_content_length_fails_mw_3", &["REQ-RESP-5"]),
    (Kind::App, "stalled_write", "panicking_app_fails_err_4", &["REQ-APP-5"]),
    (Kind::App, "client_gone_during_upload", "panicking_app_fails_err_4", &["REQ-APP-5"]),
    (Kind::App, "client_gone_during_download", "body_panicking_when_the_client_goes_away_fails_conc_2", &["REQ-CONC-2"]),
    (Kind::App, "client_gone_before_response", "body_panicking_when_the_client_goes_away_fails_conc_2", &["REQ-APP-5"]),
    (Kind::App, "middleware_serves_inner_app", "a_middleware_that_breaks_server_rules_toward_its_app_fails_mw_1", &["REQ-MW-1"]),
    (Kind::App, "middleware_streams_inner_body", "a_middleware_that_collects_the_body_fails_mw_2", &["REQ-MW-2"]),
    (Kind::App, "middleware_fixes_content_length", "a_middleware_that_changes_the_length_without_fixing_content_length_fails_mw_3", &["REQ-MW-3", "REQ-RESP-5"]),
    (Kind::App, "middleware_drops_inner_body", "a_middleware_that_keeps_the_inner_body_alive_fails_mw_4", &["REQ-MW-4"]),
    (Kind::App, "middleware_passes_extensions", "a_middleware_that_drops_extensions_fails_ext_2", &["REQ-EXT-2", "REQ-MW-5"]),
    (Kind::App, "middleware_passes_extensions", "a_middleware_that_loses_the_response_extensions_fails_ext_2", &["REQ-EXT-2"]),
    (Kind::App, "middleware_keeps_the_path", "a_middleware_that_drops_a_prefix_from_the_path_fails_path_2", &["REQ-PATH-2", "REQ-MW-5"]),
    (Kind::App, "middleware_passes_inner_head", "a_middleware_that_keeps_only_the_last_of_repeated_headers_fails_srv_2", &["REQ-SRV-2", "REQ-MW-1"]),
    (Kind::Server, "response_outcome", "a_server_that_reports_every_outcome_completed_fails_req_outcome_2", &["REQ-OUTCOME-2"]),
    (Kind::Server, "response_outcome", "a_server_that_never_reports_the_outcome_fails_req_outcome_1", &["REQ-OUTCOME-1"]),
    (Kind::Server, "lifespan_state", "a_server_that_starts_the_app_per_connection_fails_req_life_1", &["REQ-LIFE-1"]),
    (Kind::Server, "lifespan_state", "a_server_that_forgets_the_lifespan_state_fails_req_life_2", &["REQ-LIFE-2"]),
    (Kind::Lint, "REQ-CAP-2", "a_middleware_between_two_lints_that_replaces_the_extensions_is_cap_2", &["REQ-CAP-2"]),
    (Kind::Lint, "REQ-ENV-7", "cgi_style_header_names_and_padded_values_are_env_7", &["REQ-ENV-7"]),
    (Kind::Lint, "REQ-INPUT-1", "request_body_longer_than_declared_is_input_1", &["REQ-INPUT-1"]),
    (Kind::Lint, "REQ-INPUT-2", "request_body_ending_short_without_an_error_is_input_2", &["REQ-INPUT-2"]),
    (Kind::Lint, "REQ-INPUT-3", "declared_length_disagreeing_with_the_headers_is_input_3", &["REQ-INPUT-3"]),
    (Kind::Lint, "REQ-INPUT-6", "polling_the_request_body_after_its_end_is_input_6", &["REQ-INPUT-6"]),
    (Kind::Lint, "REQ-RESP-1", "informational_status_is_resp_1", &["REQ-RESP-1"]),
    (Kind::Lint, "REQ-RESP-2", "hop_by_hop_header_is_resp_2", &["REQ-RESP-2"]),
    (Kind::Lint, "REQ-RESP-3", "malformed_content_length_is_resp_3_and_reported_once", &["REQ-RESP-3"]),
    (Kind::Lint, "REQ-RESP-4", "content_length_on_204_is_resp_4", &["REQ-RESP-4"]),
    (Kind::Lint, "REQ-RESP-5", "streamed_body_longer_than_content_length_is_resp_5_once", &["REQ-RESP-5"]),
    (Kind::Lint, "REQ-RESP-6", "body_for_304_is_resp_6_on_the_head", &["REQ-RESP-6"]),
    (Kind::Lint, "REQ-BODY-2", "polling_an_ended_body_again_is_body_2", &["REQ-BODY-2"]),
    (Kind::Lint, "REQ-START-1", "answering_through_a_callback_of_ones_own_is_start_1", &["REQ-START-1"]),
    (Kind::Lint, "REQ-BODY-4", "wrong_content_length_is_body_4", &["REQ-BODY-4"]),
    (Kind::Server, "file_body_range", "a_server_that_sends_a_file_range_from_the_start_of_the_file_fails_req_file_2", &["REQ-FILE-2"]),
    (Kind::Server, "file_body_short", "a_server_that_pads_a_file_that_shrank_fails_req_file_3", &["REQ-FILE-3"]),
    (Kind::Server, "upgrade_offered_when_asked", "a_server_that_offers_upgrades_unasked_fails_req_upgrade_1", &["REQ-UPGRADE-1"]),
    (Kind::Server, "upgrade_hands_over_connection", "a_server_that_drops_the_bytes_sent_with_the_upgrade_request_fails_req_upgrade_3", &["REQ-UPGRADE-3"]),
    (Kind::Server, "upgrade_hands_over_connection", "a_server_that_runs_the_handler_of_a_refused_101_fails_req_upgrade_3", &["REQ-UPGRADE-3"]),
    (Kind::App, "file_body_exact", "a_file_range_that_is_not_the_body_fails_file_1", &["REQ-FILE-1"]),
    (Kind::App, "upgrade_taken_right", "a_101_to_a_protocol_the_request_did_not_ask_for_fails_upgrade_2", &["REQ-UPGRADE-2"]),
    (Kind::Lint, "REQ-FILE-1", "a_file_range_shorter_than_the_body_is_file_1", &["REQ-FILE-1"]),
    (Kind::Lint, "REQ-UPGRADE-1", "an_upgrade_offer_for_a_request_that_did_not_ask_is_upgrade_1", &["REQ-UPGRADE-1"]),
    (Kind::Lint, "REQ-UPGRADE-2", "a_101_switching_to_a_protocol_not_asked_for_is_upgrade_2", &["REQ-UPGRADE-2"]),
];

/// The text of the function `name` in `file`, from its `#[test]` to its closing brace at the
/// start of a line.
fn test_body(file: &str, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).ok()?;
    let start = text.find(&format!("#[test]\nfn {name}() {{\n"))?;
    let body = &text[start..];
    let end = body.find("\n}\n")?;
    Some(body[..end].to_owned())
}

/// The requirements of the check or rule an entry of [`PROOFS`] names.
fn requirements_of(kind: Kind, name: &str) -> Vec<&'static str> {
    let checks = match kind {
        Kind::Server => server_suite::CHECKS,
        Kind::App => app_suite::CHECKS,
        Kind::Lint => {
            return rwgi::lint::RULES
                .iter()
                .copied()
                .filter(|rule| *rule == name)
                .collect()
        }
    };
    checks
        .iter()
        .find(|check| check.name == name)
        .map_or_else(Vec::new, |check| check.requirements.to_vec())
}

/// The requirement IDs some negative test shows a check or rule failing with.
fn proven() -> BTreeSet<String> {
    PROOFS
        .iter()
        .flat_map(|(_, _, _, ids)| ids.iter().map(|id| (*id).to_owned()))
        .collect()
}

/// The checks and lint rules that no entry of `proofs` shows failing.
fn never_failed(proofs: &[(Kind, &str, &str, &[&str])]) -> Vec<String> {
    let named = |kind: Kind, name: &str| proofs.iter().any(|(k, n, _, _)| *k == kind && *n == name);
    let mut missing = Vec::new();
    for check in server_suite::CHECKS {
        if !named(Kind::Server, check.name) {
            missing.push(format!("server check {}", check.name));
        }
    }
    for check in app_suite::CHECKS {
        if !named(Kind::App, check.name) {
            missing.push(format!("app check {}", check.name));
        }
    }
    for rule in rwgi::lint::RULES {
        if !named(Kind::Lint, rule) {
            missing.push(format!("lint rule {rule}"));
        }
    }
    missing
}

#[test]
fn every_check_and_lint_rule_has_a_negative_test() {
    let missing = never_failed(PROOFS);
    assert!(missing.is_empty(), "never shown failing: {missing:?}");
}

#[test]
fn every_negative_test_asserts_the_failure_it_is_listed_for() {
    for &(kind, name, test, ids) in PROOFS {
        let requirements = requirements_of(kind, name);
        assert!(
            !requirements.is_empty(),
            "{name} is no {kind:?} check or rule"
        );
        let body = test_body(kind.file(), test)
            .unwrap_or_else(|| panic!("no #[test] fn {test}() in {}", kind.file()));
        if kind != Kind::Lint {
            assert!(
                body.contains(&format!("\"{name}\"")),
                "{test} does not name the check {name}"
            );
        }
        assert!(
            kind.asserting_calls()
                .iter()
                .any(|call| body.contains(call)),
            "{test} makes none of the asserting calls {:?}",
            kind.asserting_calls()
        );
        assert!(!ids.is_empty(), "{test}: no requirement listed");
        for id in ids {
            assert!(
                requirements.contains(id) || body.contains(&format!("breaks {id} ")),
                "{test}: {name} does not cite {id}"
            );
            // The ID leads an expected failure detail (`"REQ-…:`), or is the requirement
            // argument of an asserting helper, or is named as the rule a refused head broke.
            let asserted = [
                format!("\"{id}: "),
                format!("; {id}: "),
                format!("({id}: "),
                format!("({id})"),
                format!("\"{id}\""),
                format!("breaks {id} "),
            ];
            assert!(
                asserted.iter().any(|text| body.contains(text.as_str())),
                "{test} does not assert a failure naming {id}"
            );
        }
    }
}

#[test]
fn a_check_without_a_negative_test_is_caught() {
    let without: Vec<_> = PROOFS
        .iter()
        .copied()
        .filter(|(_, name, _, _)| !["keep_alive", "no_panic", "REQ-RESP-2"].contains(name))
        .collect();
    assert_eq!(
        never_failed(&without),
        [
            "server check keep_alive",
            "app check no_panic",
            "lint rule REQ-RESP-2"
        ]
    );
    assert_eq!(test_body("tests/server_suite.rs", "no_such_test"), None);
    let body = test_body(
        "tests/server_suite.rs",
        "a_server_that_keeps_bodies_fails_req_srv_8",
    );
    assert!(body.is_some_and(|body| body.contains("\"body_dropped_after_completion\"")));
}

/// The requirements checked by the tests of another crate of the workspace: each row names
/// `file: test, test` (several files separated by `;`), and every file and test must exist.
fn checked_by_tests_elsewhere(spec: &str) -> BTreeSet<String> {
    let heading = "### Checked by the tests of another crate";
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut ids = BTreeSet::new();
    for row in section(spec, heading)
        .lines()
        .filter(|l| l.starts_with("| REQ-"))
    {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 4, "row {row:?} has two cells");
        for place in cells[2].split(';') {
            let (file, tests) = place
                .split_once(':')
                .unwrap_or_else(|| panic!("{}: {place:?} is not `file: test, ...`", cells[1]));
            let text = std::fs::read_to_string(root.join(file.trim()))
                .unwrap_or_else(|error| panic!("{}: cannot read {file}: {error}", cells[1]));
            for test in tests.split(',').map(str::trim) {
                assert!(
                    text.contains(&format!("fn {test}(")),
                    "{}: {file} has no test {test}",
                    cells[1]
                );
            }
        }
        ids.insert(cells[1].to_owned());
    }
    ids
}

fn checked_by_suites() -> BTreeSet<String> {
    server_suite::CHECKS
        .iter()
        .chain(app_suite::CHECKS)
        .flat_map(|check| check.requirements.iter().map(|id| (*id).to_owned()))
        .chain(rwgi::lint::RULES.iter().map(|id| (*id).to_owned()))
        .collect()
}

#[test]
fn every_requirement_has_exactly_one_rfc2119_keyword() {
    let defined = definitions(SPEC);
    assert!(
        defined.len() > 50,
        "only {} requirements parsed",
        defined.len()
    );
    for (id, keyword) in &defined {
        assert!(
            ["MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY"].contains(&keyword.as_str()),
            "{id}: keyword {keyword:?} is not one RFC 2119 keyword"
        );
    }
}

/// The requirements of `spec` that nothing checks and section 16 does not excuse.
fn unaccounted(spec: &str) -> Vec<String> {
    let by_types = table_ids(spec, "### Enforced by the types");
    let not_checkable = table_ids(spec, "### Not mechanically checkable");
    let tested = table_ids(spec, "### Tested on the reference implementation");
    let both: Vec<_> = by_types.intersection(&not_checkable).collect();
    assert!(
        both.is_empty(),
        "listed as typed and as uncheckable: {both:?}"
    );
    let mut checked = proven();
    // A requirement is exactly one of: proven by a negative test, enforced by the types, or
    // not checkable (and then no check may claim it).
    let typed_and_proven: Vec<_> = by_types.intersection(&checked).collect();
    assert!(
        typed_and_proven.is_empty(),
        "listed as enforced by the types, yet a check is shown failing on it: {typed_and_proven:?}"
    );
    let cited = checked_by_suites();
    let uncheckable_yet_cited: Vec<_> = not_checkable.intersection(&cited).collect();
    assert!(
        uncheckable_yet_cited.is_empty(),
        "listed as not checkable, yet a check or lint rule cites it: {uncheckable_yet_cited:?}"
    );
    // Checked by another crate's tests, which the table in section 16 names.
    checked.extend(checked_by_tests_elsewhere(spec));
    definitions(spec)
        .into_keys()
        .filter(|id| {
            !checked.contains(id)
                && !by_types.contains(id)
                && !not_checkable.contains(id)
                && !tested.contains(id)
        })
        .collect()
}

#[test]
fn every_requirement_is_checked_or_says_why_not() {
    let missing = unaccounted(SPEC);
    assert!(
        missing.is_empty(),
        "requirements with no check and no reason in section 16: {missing:?}"
    );
}

#[test]
fn a_requirement_without_a_check_is_caught() {
    // Built at run time so that this file does not itself cite an undefined requirement.
    let id = format!("REQ-{}-1", "ZZZ");
    let doctored = SPEC.replace(
        "## 16. How each requirement is checked",
        &format!(
            "- **{id}** (MUST) A rule nothing checks.\n\n## 16. How each requirement is checked"
        ),
    );
    assert_eq!(unaccounted(&doctored), [id]);
}

#[test]
fn a_row_naming_a_test_that_does_not_exist_is_caught() {
    let real = "round_tripped_twice_on_hyper_passes_the_server_suite";
    assert!(SPEC.contains(real));
    let doctored = SPEC.replace(real, "a_test_nobody_wrote");
    let caught = std::panic::catch_unwind(|| checked_by_tests_elsewhere(&doctored));
    let message = caught.expect_err("a missing test is an error");
    let message = message
        .downcast_ref::<String>()
        .expect("a formatted message");
    assert_eq!(
        message,
        "REQ-BRIDGE-7: rwgi-tower/tests/round_trip.rs has no test a_test_nobody_wrote"
    );
}

#[test]
fn nothing_cites_an_undefined_requirement() {
    let defined = definitions(SPEC);
    let mut cited: BTreeMap<String, String> = BTreeMap::new();
    for id in ids_in(SPEC) {
        cited.entry(id).or_insert_with(|| "spec/SPEC.md".into());
    }
    for id in checked_by_suites() {
        cited
            .entry(id)
            .or_insert_with(|| "a conformance check or lint rule".into());
    }
    for dir in [
        "src",
        "tests",
        "examples",
        "rwgi-tower/src",
        "rwgi-tower/tests",
        "rwgi-tower/examples",
    ] {
        visit(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).as_path(),
            &mut |path, text| {
                for id in ids_in(text) {
                    cited
                        .entry(id)
                        .or_insert_with(|| path.display().to_string());
                }
            },
        );
    }
    let undefined: Vec<_> = cited
        .iter()
        .filter(|(id, _)| !defined.contains_key(*id))
        .map(|(id, place)| format!("{id} (in {place})"))
        .collect();
    assert!(undefined.is_empty(), "cited but not defined: {undefined:?}");
}

fn visit(dir: &Path, f: &mut dyn FnMut(&Path, &str)) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            visit(&path, f);
        } else if path.extension().is_some_and(|e| e == "rs") {
            f(
                &path,
                &std::fs::read_to_string(&path).expect("UTF-8 source"),
            );
        }
    }
}

/// The `(file, test)` pairs the table "Tested on the reference implementation" names, by ID.
fn reference_tests(spec: &str) -> Vec<(String, String, String)> {
    section(spec, "### Tested on the reference implementation")
        .lines()
        .filter(|line| line.starts_with("| REQ-"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let quoted: Vec<&str> = cells[2].split('`').skip(1).step_by(2).collect();
            assert!(quoted.len() >= 2, "{row}: expected `file` `test`");
            (
                cells[1].to_owned(),
                quoted[0].to_owned(),
                quoted[1].to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_reference_test_in_section_16_exists_and_is_about_its_requirement() {
    let rows = reference_tests(SPEC);
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (id, file, test) in rows {
        let body = test_body(&file, &test)
            .unwrap_or_else(|| panic!("{id}: no #[test] fn {test}() in {file}"));
        assert!(body.contains("assert"), "{id}: {test} asserts nothing");
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(&file))
            .expect("the test file");
        let at = text.find(&format!("fn {test}()")).expect("the test");
        // The doc comment and attributes right above the function, and its body.
        let above: Vec<&str> = text[..at]
            .lines()
            .rev()
            .take_while(|line| line.starts_with("///") || line.starts_with("#["))
            .collect();
        let documented = above.iter().any(|line| line.contains(&id)) || body.contains(&id);
        assert!(documented, "{id}: {test} does not name it");
    }
}

/// The spec's `Version: X.Y` line.
fn spec_version(spec: &str) -> (u16, u16) {
    let line = spec
        .lines()
        .find_map(|line| line.strip_prefix("Version: "))
        .expect("a Version: line");
    let (major, minor) = line.trim().split_once('.').expect("major.minor");
    (
        major.parse().expect("a major version"),
        minor.parse().expect("a minor version"),
    )
}

#[test]
fn the_versions_agree() {
    // REQ-VER-1: the spec and the crates are versioned apart; the constant says which spec
    // version this release implements, and every ServerInfo reports it.
    assert_eq!(spec_version(SPEC), rwgi::SPEC_VERSION);
    let info = rwgi::environ::ServerInfo::new("versions");
    assert_eq!(info.spec_version(), rwgi::SPEC_VERSION);
    let history = section(SPEC, "## 18. History");
    let (major, minor) = rwgi::SPEC_VERSION;
    assert!(
        history
            .trim_start()
            .starts_with(&format!("- {major}.{minor} ")),
        "the history's first entry is not {major}.{minor}"
    );
    assert!(
        !SPEC.contains("follows the spec's major version"),
        "REQ-VER-1 must not tie the crate's version to the spec's"
    );
    // The crates have versions of their own, released together.
    let crate_version = env!("CARGO_PKG_VERSION");
    assert!(
        crate_version
            .split('.')
            .all(|part| part.parse::<u64>().is_ok()),
        "{crate_version}"
    );
    let conformance = include_str!("../rwgi-conformance/Cargo.toml");
    let minor_of = |version: &str| version.rsplit_once('.').map(|(head, _)| head.to_owned());
    assert!(
        conformance.contains(&format!(
            "rwgi = {{ path = \"..\", version = \"{}\" }}",
            minor_of(crate_version).unwrap()
        )),
        "rwgi-conformance does not depend on this rwgi release"
    );
    assert_eq!(spec_version("Version: 2.3\n"), (2, 3));
}
