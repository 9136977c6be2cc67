//! The README's two programs for the bridge are the example targets of this crate, verbatim,
//! so what readers copy is what `cargo test` compiles.

const README: &str = include_str!("../../README.md");

fn block_after(heading: &str) -> &'static str {
    let start = README
        .find(heading)
        .unwrap_or_else(|| panic!("the README has {heading:?}"));
    let rest = &README[start..];
    let open = rest.find("```rust,ignore\n").expect("a Rust block") + "```rust,ignore\n".len();
    // The closing fence starts a line; the example's own doc comments hold fences after `//!`.
    let close = rest[open..].find("\n```\n").expect("the end of the block");
    &rest[open..open + close + 1]
}

#[test]
fn host_an_axum_app_on_rwgi_server_is_the_example() {
    assert_eq!(
        block_after("## Host an axum app on rwgi-server"),
        include_str!("../examples/axum_on_rwgi_server.rs")
    );
}

#[test]
fn serve_an_rwgi_app_with_hyper_or_axum_is_the_example() {
    assert_eq!(
        block_after("## Serve an rwgi app with hyper or axum"),
        include_str!("../examples/rwgi_on_hyper.rs")
    );
}
