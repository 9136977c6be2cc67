//! The example framework's demo app (`examples/apps/framework.rs`) on `rwgi-server`, embedded
//! with the access log off: the rwgi side of the realistic-app comparison with axum
//! (`axum-hello --app json`, `GET /hello/{name}`).

#[path = "../../../../examples/apps/framework.rs"]
#[allow(dead_code)]
mod framework;

use rwgi_bench_peers::Options;

fn main() {
    let options = Options::from_args("framework");
    rwgi_bench_peers::serve_rwgi(&options, framework::demo_app());
}
