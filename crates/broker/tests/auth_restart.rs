//! Groups, tokens and device credentials made through the HTTP API survive a broker
//! restart on the redb store (a temporary data directory).

mod auth_support;

use std::path::Path;

use auth_support::*;
use mqgate_broker::{BrokerConfig, BrokerHandle};
use rumqttc::ConnectReturnCode as Code;

fn config(data_dir: &Path) -> BrokerConfig {
    let top = format!("storage = \"redb\"\ndata_dir = \"{}\"", data_dir.display());
    api_config(&top, "", "")
}

/// Starts on `data_dir`, once the previous broker let go of it.
async fn start_on(data_dir: &Path) -> BrokerHandle {
    start_retrying(|| config(data_dir)).await
}

/// Applies for a token on `keep/#` with `actions`.
async fn token(broker: &BrokerHandle, actions: &str) -> String {
    let expire = (now_ms() + 3_600_000).to_string();
    let params = [
        ("InstanceId", INSTANCE),
        ("Resources", "keep/#"),
        ("Actions", actions),
        ("ExpireTime", &expire),
    ];
    let answer = ok(&api_get(broker, AK, SECRET, "ApplyToken", &params).await);
    answer["Token"].as_str().expect("a token").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let instance = ("InstanceId", INSTANCE);
    let device = "GID_keep@@@dev";

    let first = start_on(dir.path()).await;
    ok(&api_get(
        &first,
        AK,
        SECRET,
        "CreateGroupId",
        &[instance, ("GroupId", "GID_keep")],
    )
    .await);
    let revoked = token(&first, "R").await;
    let token = token(&first, "R,W").await;
    ok(&api_get(
        &first,
        AK,
        SECRET,
        "RevokeToken",
        &[instance, ("Token", &revoked)],
    )
    .await);
    let credential = ok(&api_get(
        &first,
        AK,
        SECRET,
        "RegisterDeviceCredential",
        &[instance, ("ClientId", device)],
    )
    .await)["DeviceCredential"]
        .clone();
    first.shutdown().await;
    drop(first);

    let second = start_on(dir.path()).await;
    let groups = ok(&api_get(&second, AK, SECRET, "ListGroupId", &[instance]).await);
    assert_eq!(groups["Data"][0]["GroupId"], "GID_keep", "{groups}");
    assert_eq!(
        connack_code(signed(&second, "GID_keep@@@sig", AK, SECRET)).await,
        Code::Success
    );

    let mut with_token = options(&second, "GID_keep@@@tok");
    with_token.set_credentials(format!("Token|{AK}|{INSTANCE}"), format!("RW|{token}"));
    assert_eq!(connack_code(with_token).await, Code::Success);
    let mut with_revoked = options(&second, "GID_keep@@@tok2");
    with_revoked.set_credentials(format!("Token|{AK}|{INSTANCE}"), format!("R|{revoked}"));
    assert_eq!(connack_code(with_revoked).await, Code::NotAuthorized);
    let status = ok(&api_get(
        &second,
        AK,
        SECRET,
        "QueryToken",
        &[instance, ("Token", &token)],
    )
    .await);
    assert_eq!(status["TokenStatus"], true);

    let kept = ok(&api_get(
        &second,
        AK,
        SECRET,
        "GetDeviceCredential",
        &[instance, ("ClientId", device)],
    )
    .await);
    assert_eq!(kept["DeviceCredential"], credential);
    let key_id = credential["DeviceAccessKeyId"].as_str().expect("key id");
    let secret = credential["DeviceAccessKeySecret"]
        .as_str()
        .expect("secret");
    let mut as_device = options(&second, device);
    as_device.set_credentials(
        format!("DeviceCredential|{key_id}|{INSTANCE}"),
        mqgate_auth::sign_client_id(secret, device),
    );
    assert_eq!(connack_code(as_device).await, Code::Success);
    second.shutdown().await;
}
