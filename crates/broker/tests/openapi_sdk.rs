//! The HTTP API driven by the model service's official Python SDK
//! (`alibabacloud-onsmqtt20200420==1.7.1`), both signature schemes, with paho-mqtt clients
//! for the end-to-end cases (tokens, device credentials, online status, SendMessage,
//! CloseConnection, custom identities, permissions and the connect blacklist, the four
//! message trace queries).
//! `scripts/test.sh` installs both; without them the test says it skipped (and fails under
//! `MQGATE_REQUIRE_INTEROP=1`).

mod auth_support;

use std::process::Command;

use auth_support::{api_config, start, AK, INSTANCE, SECRET};
use mqgate_broker::ListenerKind;

fn sdk_available() -> bool {
    Command::new("python3")
        .args([
            "-c",
            "import alibabacloud_onsmqtt20200420, alibabacloud_tea_openapi, paho.mqtt",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdk_drives_every_action() {
    if !sdk_available() {
        assert!(
            std::env::var_os("MQGATE_REQUIRE_INTEROP").is_none(),
            "the Python SDK (alibabacloud-onsmqtt20200420) or paho-mqtt is missing under MQGATE_REQUIRE_INTEROP"
        );
        eprintln!("SKIPPED: python3 alibabacloud-onsmqtt20200420 / paho-mqtt not installed (scripts/test.sh installs them)");
        return;
    }
    let broker = start(api_config("storage = \"memory\"", "", ""), None).await;
    let http = broker
        .local_addr(ListenerKind::Http)
        .expect("http listener");
    let mqtt = broker.local_addr(ListenerKind::Tcp).expect("tcp listener");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/openapi_sdk.py");
    let args = [
        script.to_owned(),
        http.port().to_string(),
        mqtt.port().to_string(),
        AK.to_owned(),
        SECRET.to_owned(),
        INSTANCE.to_owned(),
    ];
    let child = tokio::process::Command::new("python3")
        .args(&args)
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 starts");
    // On timeout the child is dropped, which kills it.
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        child.wait_with_output(),
    )
    .await
    .expect("the SDK script ends within 2 minutes")
    .expect("python3 ran");
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    let status = output.status;
    eprintln!("{out}");
    assert!(status.success(), "SDK script failed:\n{out}\n{err}");
    assert!(out.contains("acs3: ok") && out.contains("rpc: ok"), "{out}");
    assert!(
        out.contains("acs3: custom auth ok") && out.contains("rpc: custom auth ok"),
        "{out}"
    );
    assert!(
        out.contains("acs3: trace ok") && out.contains("rpc: trace ok"),
        "{out}"
    );
    let metrics = broker.metrics();
    assert!(metrics.api_requests > 40, "{metrics:?}");
    assert!(metrics.publish_denied >= 2, "{metrics:?}");
    broker.shutdown().await;
}
