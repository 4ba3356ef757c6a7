//! The first admin: from explicit credentials, never from a default password.

mod api_support;

use api_support::*;
use vigil_server::auth::{bootstrap_admin, AdminBootstrap, BootstrapError, Role};

both_backends!(
    the_first_admin_is_created_once_from_given_credentials,
    |b, tag| async move {
        let app = TestApp::new(b, tag).await;
        let admin = AdminBootstrap {
            username: "chief".into(),
            password: PASSWORD.into(),
        };
        let store = app.db.store.as_ref();
        assert!(bootstrap_admin(store, app.state.hashing(), &admin, t0())
            .await
            .unwrap());
        assert!(!bootstrap_admin(store, app.state.hashing(), &admin, t0())
            .await
            .unwrap());
        let user = store.get_user("chief").await.unwrap().unwrap();
        assert_eq!(user.role, Role::Admin);
        assert_ne!(user.password_hash, PASSWORD);
        app.login("chief").await;
        app.db.cleanup().await;
    }
);

#[tokio::test]
async fn a_weak_bootstrap_password_is_refused() {
    let app = TestApp::new(Backend::Sqlite, "weak").await;
    let admin = AdminBootstrap {
        username: "chief".into(),
        password: "admin".into(),
    };
    let err = bootstrap_admin(app.db.store.as_ref(), app.state.hashing(), &admin, t0()).await;
    assert!(matches!(err, Err(BootstrapError::Password(_))), "{err:?}");
    assert_eq!(app.db.store.count_admins().await.unwrap(), 0);
}
