//! The route table: every address seatgate answers, declared once.
//!
//! Each [`Route`] names its methods, path pattern, surface (which decides the error
//! format and the admin address banner), body-size class (the gatekeeper's cap, read
//! before the body arrives), authentication, CSRF requirement, rate limit and handler.
//! The gatekeeper (`net::head`), the pipeline (`pipeline`), the error rendering and the
//! metrics route names all read this table; nothing else classifies paths.
//!
//! Matching is `matchit`'s (static segments before parameters before catch-alls). A
//! path with a trailing slash matches as without it, as the hand-written routers did.

use std::sync::LazyLock;

use crate::app::App;
use crate::config::Limits;
use crate::domain::problem::Reason;
use crate::endpoints::{files, updates};
use crate::error::{Format, HttpError};
use crate::pipeline::{Ctx, Handled};

/// Which kind of client an address serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Operations and discovery for anyone: health, metrics, keys (JSON errors).
    PublicApi,
    /// Pages end users and IdPs reach before any session: SAML, activation, setup.
    PublicPage,
    /// The device licensing API (JSON).
    DeviceApi,
    /// SCIM 2.0 provisioning (SCIM errors, request log).
    Scim,
    /// The admin portal's pages (HTML; the wrong-address banner).
    AdminPage,
    /// The admin JSON API.
    AdminApi,
    /// `seatgate demo`'s identity provider; absent otherwise.
    Demo,
}

impl Surface {
    /// Whether a request with a method the address does not take is authenticated before
    /// its 405: token APIs reveal nothing to a caller without a token.
    pub fn authenticates_before_405(self) -> bool {
        matches!(self, Surface::Scim | Surface::AdminApi)
    }

    /// The shape of this surface's error responses.
    pub fn format(self) -> Format {
        match self {
            Surface::PublicApi | Surface::DeviceApi | Surface::AdminApi => Format::Api,
            Surface::Scim => Format::Scim,
            Surface::PublicPage | Surface::AdminPage | Surface::Demo => Format::Html,
        }
    }
}

/// Body-size classes, each capped by its own `[limits]` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    Scim,
    Saml,
    Api,
    /// A renewal, which may carry the device's VM inventory.
    Renewal,
    Admin,
    Other,
    /// A piece of a file upload: written to disk by the gatekeeper as it arrives, after
    /// the application has consented (see `net::front`); never buffered.
    Upload,
}

impl Body {
    pub fn cap(self, limits: &Limits) -> usize {
        match self {
            Body::Scim => limits.body_max_scim,
            Body::Saml => limits.body_max_saml,
            Body::Api => limits.body_max_api,
            Body::Renewal => limits.body_max_renewal,
            Body::Admin => limits.body_max_admin,
            Body::Other => limits.body_max_other,
            Body::Upload => limits.body_max_upload,
        }
    }
}

/// Who may call a route, checked by the pipeline before the handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Anyone (the handler may check a one-time credential of its own: a setup code, a
    /// sign-in link, a device code with its PKCE verifier, a signed SAML response).
    None,
    /// `Authorization: Bearer` with the metrics token; 404 while metrics are off.
    MetricsToken,
    /// A device's proof of possession: a JWS signed by its key, as
    /// `Authorization: Device <JWS>` or the body's `proof`; verified against the lease
    /// by the licensing module, which alone knows the device's key.
    DeviceProof,
    /// A SCIM bearer token.
    ScimToken,
    /// An admin portal session cookie; a browser without one is sent to sign in.
    AdminSession,
    /// An admin API token, or a portal session (whose changes need `X-CSRF-Token`).
    AdminTokenOrSession,
    /// Only from this computer (the demo IdP).
    Loopback,
}

/// The CSRF defence a state-changing route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Csrf {
    /// Not state-changing, or a credential no other site can send (a bearer token).
    None,
    /// The session's token in the form's `csrf` field, and an Origin (when sent) of ours.
    SessionForm,
    /// `X-CSRF-Token` with the session's token, when the caller is a portal session.
    SessionHeader,
    /// A double-submit cookie checked by the handler: before any session exists (the
    /// sign-in, setup and activation forms), whose refusal re-renders that form.
    DoubleSubmitInHandler,
    /// The IdP's signed SAML response, bound to the browser that started the sign-in by
    /// a cookie (`saml::acs` checks both).
    SamlBinding,
}

/// A limit on requests the pipeline applies before the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    None,
    /// The unauthenticated sign-in/activation limits (`[pre_auth]`), per address
    /// and for everyone: these requests store rows before anyone is known.
    PreAuth,
    /// The SCIM token's request rate (`[scim] requests_per_second`).
    ScimToken,
}

/// HTTP methods a route accepts, as a small set (GET implies HEAD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Methods(u8);

pub const GET: Methods = Methods(1);
pub const POST: Methods = Methods(2);
pub const PUT: Methods = Methods(4);
pub const PATCH: Methods = Methods(8);
pub const DELETE: Methods = Methods(16);
/// Any method: the catch-all routes that answer 404 for unknown addresses.
pub const ANY: Methods = Methods(u8::MAX);

impl Methods {
    pub const fn or(self, other: Methods) -> Methods {
        Methods(self.0 | other.0)
    }

    pub fn accepts(self, method: &str) -> bool {
        let bit = match method {
            "GET" | "HEAD" => GET.0,
            "POST" => POST.0,
            "PUT" => PUT.0,
            "PATCH" => PATCH.0,
            "DELETE" => DELETE.0,
            _ => 0,
        };
        self == ANY || self.0 & bit != 0
    }

    /// Whether any of these methods changes state.
    pub fn changes_state(self) -> bool {
        self.0 & !GET.0 != 0
    }

    /// The `Allow` header value, e.g. `"GET, HEAD, POST"`.
    pub fn allow(self) -> String {
        let mut names = Vec::new();
        for (bit, name) in [
            (GET, "GET, HEAD"),
            (POST, "POST"),
            (PUT, "PUT"),
            (PATCH, "PATCH"),
            (DELETE, "DELETE"),
        ] {
            if self.0 & bit.0 != 0 {
                names.push(name);
            }
        }
        names.join(", ")
    }
}

pub type Handler = for<'a> fn(&'a App, &'a Ctx<'a>) -> Handled;

/// One route. Built with [`Route::new`] and the builder methods below, so each table
/// entry states only what differs from its surface's defaults.
#[derive(Clone, Copy)]
pub struct Route {
    pub methods: Methods,
    pub pattern: &'static str,
    pub surface: Surface,
    pub body: Body,
    pub auth: Auth,
    pub csrf: Csrf,
    pub limit: Limit,
    pub handler: Handler,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("methods", &self.methods.allow())
            .field("pattern", &self.pattern)
            .field("surface", &self.surface)
            .field("auth", &self.auth)
            .field("csrf", &self.csrf)
            .finish()
    }
}

impl Route {
    /// A route with its surface's defaults: the body class, authentication, CSRF (forms of
    /// a session for state-changing admin pages, the header for the admin API) and limit.
    const fn new(
        methods: Methods,
        pattern: &'static str,
        surface: Surface,
        handler: Handler,
    ) -> Route {
        let state_changing = methods.0 & !GET.0 != 0 && methods.0 != ANY.0;
        let (body, auth, csrf, limit) = match surface {
            Surface::PublicApi => (Body::Other, Auth::None, Csrf::None, Limit::None),
            Surface::PublicPage => (Body::Saml, Auth::None, Csrf::None, Limit::None),
            Surface::DeviceApi => (Body::Api, Auth::None, Csrf::None, Limit::None),
            Surface::Scim => (Body::Scim, Auth::ScimToken, Csrf::None, Limit::ScimToken),
            Surface::AdminPage => (
                Body::Admin,
                Auth::AdminSession,
                if state_changing {
                    Csrf::SessionForm
                } else {
                    Csrf::None
                },
                Limit::None,
            ),
            Surface::AdminApi => (
                Body::Api,
                Auth::AdminTokenOrSession,
                if state_changing {
                    Csrf::SessionHeader
                } else {
                    Csrf::None
                },
                Limit::None,
            ),
            Surface::Demo => (Body::Other, Auth::Loopback, Csrf::None, Limit::None),
        };
        Route {
            methods,
            pattern,
            surface,
            body,
            auth,
            csrf,
            limit,
            handler,
        }
    }

    const fn body(self, body: Body) -> Route {
        Route { body, ..self }
    }

    const fn auth(self, auth: Auth) -> Route {
        Route { auth, ..self }
    }

    const fn csrf(self, csrf: Csrf) -> Route {
        Route { csrf, ..self }
    }

    const fn limit(self, limit: Limit) -> Route {
        Route { limit, ..self }
    }

    /// Whether this route only answers 404 (after authentication) for addresses no
    /// other route claims: the fallbacks, which accept any method.
    pub fn is_fallback(&self) -> bool {
        self.methods == ANY
    }
}

use Surface::{AdminApi, AdminPage, DeviceApi, PublicApi, PublicPage, Scim};

fn not_found(_: &App, cx: &Ctx<'_>) -> Handled {
    Err(match cx.route.surface {
        Surface::Scim => HttpError::scim(
            Reason::NotFound,
            "invalidPath",
            "There is no SCIM resource at this address.",
        ),
        _ => HttpError::not_found(),
    })
}

/// A route that panics, so the integration tests can show that a panic costs one request
/// and never an app thread: debug builds only, and there only with
/// `SEATGATE_TEST_PANIC_ROUTE=1`; elsewhere it is any unknown address.
fn test_panic(cx: &Ctx<'_>) -> Handled {
    #[cfg(debug_assertions)]
    {
        static ENABLED: LazyLock<bool> = LazyLock::new(|| {
            std::env::var_os("SEATGATE_TEST_PANIC_ROUTE").is_some_and(|v| v == "1")
        });
        if *ENABLED {
            panic!("the test panic route panicked on purpose");
        }
    }
    let _ = cx;
    Err(HttpError::not_found())
}

/// Every route. Order matters only for readability; matching is by pattern.
pub static ROUTES: &[Route] = &[
    // --- operations -------------------------------------------------------------------
    // The bare address typed into a browser: the admin portal (it asks to sign in).
    Route::new(GET, "/", PublicPage, |_, _| {
        Ok(crate::http::Response::see_other("/admin"))
    }),
    Route::new(GET, "/healthz", PublicApi, |app, _| Ok(app.health())),
    Route::new(GET, "/readyz", PublicApi, |app, _| Ok(app.ready())),
    Route::new(GET, "/metrics", PublicApi, |app, _| Ok(app.metrics_page()))
        .auth(Auth::MetricsToken),
    // Any method: outside the tests it is indistinguishable from an unknown address.
    Route::new(ANY, "/test/panic", PublicApi, |_, cx| test_panic(cx)),
    Route::new(GET, "/.well-known/jwks.json", PublicApi, |app, _| {
        app.licensing.jwks()
    }),
    // --- SAML ----------------------------------------------------------------------------
    Route::new(GET, "/saml/metadata", PublicPage, |app, _| {
        app.sp_metadata(None)
    }),
    Route::new(
        GET,
        "/saml/metadata/{*connection}",
        PublicPage,
        |app, cx| app.sp_metadata(Some(cx.param("connection"))),
    ),
    Route::new(GET, "/saml/login", PublicPage, |app, cx| {
        app.saml_login(cx, None)
    })
    .limit(Limit::PreAuth),
    Route::new(GET, "/saml/login/{*connection}", PublicPage, |app, cx| {
        app.saml_login(cx, Some(cx.param("connection")))
    })
    .limit(Limit::PreAuth),
    Route::new(POST, "/saml/acs/{*connection}", PublicPage, |app, cx| {
        app.saml_acs(cx.req, cx.param("connection"))
    })
    .csrf(Csrf::SamlBinding),
    Route::new(ANY, "/saml/{*rest}", PublicPage, not_found),
    // --- first run ------------------------------------------------------------------------
    Route::new(GET, "/setup", PublicPage, |app, _| app.admin.setup_form()).body(Body::Admin),
    Route::new(POST, "/setup", PublicPage, |app, cx| {
        app.admin.complete_setup(cx.req)
    })
    .body(Body::Admin)
    .csrf(Csrf::DoubleSubmitInHandler),
    Route::new(ANY, "/setup/{*rest}", PublicPage, not_found).body(Body::Admin),
    // --- device activation and leases -----------------------------------------------------
    Route::new(POST, "/api/v1/activations", DeviceApi, |app, cx| {
        app.licensing.start_activation(cx.req, cx.admitted()?)
    })
    .limit(Limit::PreAuth),
    Route::new(POST, "/api/v1/activations/token", DeviceApi, |app, cx| {
        app.licensing.token(cx.req)
    }),
    Route::new(POST, "/api/v1/leases/renew", DeviceApi, |app, cx| {
        app.licensing.renew(cx.req, cx.device_proof()?)
    })
    .body(Body::Renewal)
    .auth(Auth::DeviceProof),
    Route::new(GET, "/api/v1/policy", DeviceApi, |app, cx| {
        app.licensing.policy(cx.req, cx.device_proof()?)
    })
    .auth(Auth::DeviceProof),
    Route::new(GET, "/api/v1/images", DeviceApi, |app, cx| {
        files::device_listing(app, cx)
    })
    .auth(Auth::DeviceProof),
    // The listing's download authorization is checked by the handler (a proof of
    // possession is single-use; a download takes many range requests).
    Route::new(
        GET,
        "/api/v1/images/{version}/file",
        DeviceApi,
        files::download,
    ),
    Route::new(GET, "/api/v1/updates", DeviceApi, updates::device_feed).auth(Auth::DeviceProof),
    // --- the local update server: public feeds and packages, as a LAN web server's ----------
    Route::new(
        GET,
        "/updates/{branch}/appcast.xml",
        PublicApi,
        updates::appcast,
    ),
    Route::new(
        GET,
        "/updates/{branch}/feed.json",
        PublicApi,
        updates::json_feed,
    ),
    Route::new(
        GET,
        "/updates/pinned/{version}/appcast.xml",
        PublicApi,
        updates::appcast,
    ),
    Route::new(
        GET,
        "/updates/pinned/{version}/feed.json",
        PublicApi,
        updates::json_feed,
    ),
    Route::new(
        GET,
        "/updates/packages/{id}/{file}",
        PublicApi,
        updates::download,
    ),
    Route::new(GET, "/api/v1/policy-schema", DeviceApi, |app, _| {
        Ok(app.licensing.policy_schema())
    }),
    Route::new(DELETE, "/api/v1/leases/{*id}", DeviceApi, |app, cx| {
        app.licensing.deactivate(cx.param("id"), cx.device_proof()?)
    })
    .auth(Auth::DeviceProof),
    Route::new(GET, "/activate/{*key}", PublicPage, |app, cx| {
        app.licensing.confirm_page(cx.param("key"))
    })
    .body(Body::Other),
    Route::new(POST, "/activate/{*key}", PublicPage, |app, cx| {
        app.licensing.confirmed(cx.req, cx.param("key"), cx)
    })
    .body(Body::Other)
    .csrf(Csrf::DoubleSubmitInHandler)
    .limit(Limit::PreAuth),
    // Invitation links: the pre-authentication limits slow down guessing.
    Route::new(GET, "/invite/{*token}", PublicPage, |app, cx| {
        app.invitation_page(cx.param("token"))
    })
    .body(Body::Other)
    .limit(Limit::PreAuth),
    Route::new(POST, "/invite/{*token}", PublicPage, |app, cx| {
        app.invitation_continue(cx.req, cx.param("token"))
    })
    .body(Body::Other)
    .csrf(Csrf::DoubleSubmitInHandler)
    .limit(Limit::PreAuth),
    // --- admin portal: signing in ---------------------------------------------------------
    Route::new(GET, "/admin/login", AdminPage, |app, _| {
        Ok(app.admin.login_form())
    })
    .auth(Auth::None),
    Route::new(POST, "/admin/login", AdminPage, |app, cx| {
        app.admin.password_login(cx.req)
    })
    .auth(Auth::None)
    .csrf(Csrf::DoubleSubmitInHandler),
    Route::new(GET, "/admin/sso", AdminPage, |app, cx| {
        app.admin.start_sso(cx)
    })
    .auth(Auth::None)
    .limit(Limit::PreAuth),
    Route::new(GET, "/admin/login/link", AdminPage, |app, cx| {
        app.admin.link_login(cx.req)
    })
    .auth(Auth::None),
    Route::new(POST, "/admin/logout", AdminPage, |app, cx| {
        app.admin.logout(cx.session_id()?)
    }),
    Route::new(GET, "/admin/assets/setup.js", AdminPage, |_, _| {
        Ok(crate::admin::setup_script())
    })
    .auth(Auth::None),
    Route::new(GET, "/admin/assets/portal.js", AdminPage, |_, _| {
        Ok(crate::admin::script())
    })
    .auth(Auth::None),
    Route::new(GET, "/admin/assets/portal.css", AdminPage, |_, _| {
        Ok(crate::admin::stylesheet())
    })
    .auth(Auth::None),
    // --- admin portal: pages behind a session ----------------------------------------------
    Route::new(GET, "/admin", AdminPage, |app, cx| {
        app.admin.overview(cx.session()?)
    }),
    Route::new(GET, "/admin/welcome", AdminPage, |app, cx| {
        app.admin.welcome_page(cx.session()?)
    }),
    Route::new(GET, "/admin/users", AdminPage, |app, cx| {
        app.admin.users_page(cx.req, cx.session()?)
    }),
    Route::new(GET, "/admin/updates", AdminPage, |app, cx| {
        app.admin.updates_page(cx.session()?)
    }),
    Route::new(
        POST,
        "/admin/updates/{version}/retire",
        AdminPage,
        |app, cx| {
            app.admin
                .retire_update(cx.session()?, &cx.actor()?, cx.param("version"))
        },
    ),
    Route::new(GET, "/admin/images", AdminPage, |app, cx| {
        app.admin.images_page(cx.session()?)
    }),
    Route::new(POST, "/admin/images/assign", AdminPage, |app, cx| {
        app.admin.assign_image(cx.req, cx.session()?, &cx.actor()?)
    }),
    Route::new(
        POST,
        "/admin/images/assignments/{id}/remove",
        AdminPage,
        |app, cx| {
            app.admin
                .unassign_image(cx.session()?, &cx.actor()?, cx.param("id"))
        },
    ),
    Route::new(
        POST,
        "/admin/images/{image}/versions/{version}/delete",
        AdminPage,
        |app, cx| {
            app.admin.delete_image_version(
                &app.distribution,
                cx.session()?,
                &cx.actor()?,
                (cx.param("image"), cx.param("version")),
            )
        },
    ),
    Route::new(GET, "/admin/vms", AdminPage, |app, cx| {
        app.admin.vms_page(cx.req, cx.session()?)
    }),
    Route::new(GET, "/admin/vms.csv", AdminPage, |app, cx| {
        app.admin.vms_csv(cx.req)
    }),
    Route::new(GET, "/admin/users.csv", AdminPage, |app, cx| {
        app.admin.users_csv(cx.req)
    }),
    Route::new(GET, "/admin/users/{id}", AdminPage, |app, cx| {
        app.admin.user_page(cx.session()?, cx.param("id"))
    }),
    Route::new(
        POST,
        "/admin/devices/{id}/deactivate",
        AdminPage,
        |app, cx| {
            app.admin
                .deactivate_device(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
        },
    ),
    Route::new(GET, "/admin/explain", AdminPage, |app, cx| {
        app.admin.explain_page(cx.req, cx.session()?)
    }),
    Route::new(GET, "/admin/licenses", AdminPage, |app, cx| {
        app.admin.licenses_page(
            cx.session()?,
            None,
            crate::admin::forms::Sticky::none(),
            crate::admin::history::range_of(cx.req)?,
        )
    }),
    Route::new(GET, "/admin/licenses/history.csv", AdminPage, |app, cx| {
        app.admin.history_csv(cx.req)
    }),
    Route::new(POST, "/admin/licenses", AdminPage, |app, cx| {
        app.admin.add_license(cx.req, cx.session()?, &cx.actor()?)
    }),
    Route::new(POST, "/admin/entitlements", AdminPage, |app, cx| {
        app.admin
            .import_entitlement(cx.req, cx.session()?, &cx.actor()?)
    }),
    Route::new(GET, "/admin/usage-report", AdminPage, |app, cx| {
        app.admin.usage_report(cx.req, &cx.actor()?)
    }),
    Route::new(GET, "/admin/registration-request", AdminPage, |app, cx| {
        cx.session()?;
        app.admin.registration_request()
    }),
    Route::new(POST, "/admin/licenses/{id}", AdminPage, |app, cx| {
        app.admin
            .edit_license(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
    }),
    Route::new(
        POST,
        "/admin/licenses/{id}/offline",
        AdminPage,
        |app, cx| {
            app.admin
                .set_offline_limit(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
        },
    ),
    Route::new(POST, "/admin/sublicenses", AdminPage, |app, cx| {
        app.admin
            .add_sublicense(cx.req, cx.session()?, &cx.actor()?)
    }),
    Route::new(POST, "/admin/sublicenses/{id}", AdminPage, |app, cx| {
        app.admin
            .edit_sublicense(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
    }),
    Route::new(
        POST,
        "/admin/sublicenses/{id}/delete",
        AdminPage,
        |app, cx| {
            app.admin
                .remove_sublicense(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
        },
    ),
    Route::new(POST, "/admin/mappings", AdminPage, |app, cx| {
        app.admin.add_mapping(cx.req, cx.session()?, &cx.actor()?)
    }),
    Route::new(POST, "/admin/mappings/{id}/delete", AdminPage, |app, cx| {
        app.admin
            .remove_mapping(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
    }),
    Route::new(GET, "/admin/deploy", AdminPage, |app, cx| {
        app.admin.deploy_page(cx.session()?)
    }),
    Route::new(
        GET,
        "/admin/deploy/profile.mobileconfig",
        AdminPage,
        |app, cx| {
            cx.session()?;
            app.admin.download_profile()
        },
    ),
    Route::new(POST, "/admin/deploy/profile", AdminPage, |app, cx| {
        cx.session()?;
        app.admin.download_key_profile(cx.req, &cx.actor()?)
    }),
    Route::new(GET, "/admin/invitations", AdminPage, |app, cx| {
        app.admin.invitations_page(cx.session()?)
    }),
    Route::new(POST, "/admin/invitations", AdminPage, |app, cx| {
        app.admin
            .send_invitations(cx.req, cx.session()?, &cx.actor()?)
    }),
    Route::new(POST, "/admin/invitations/template", AdminPage, |app, cx| {
        app.admin.save_template(cx.req, cx.session()?, &cx.actor()?)
    }),
    Route::new(
        POST,
        "/admin/invitations/test-email",
        AdminPage,
        |app, cx| app.admin.test_email(cx.req, cx.session()?, &cx.actor()?),
    ),
    Route::new(
        POST,
        "/admin/invitations/notifications",
        AdminPage,
        |app, cx| {
            app.admin
                .save_notifications(cx.req, cx.session()?, &cx.actor()?)
        },
    ),
    Route::new(
        POST,
        "/admin/invitations/{id}/resend",
        AdminPage,
        |app, cx| {
            app.admin
                .resend_invitation(cx.session()?, &cx.actor()?, cx.param("id"))
        },
    ),
    Route::new(
        POST,
        "/admin/invitations/{id}/revoke",
        AdminPage,
        |app, cx| {
            app.admin
                .revoke_invitation(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
        },
    ),
    Route::new(GET, "/admin/policies", AdminPage, |app, cx| {
        app.admin.policies_page(cx.session()?)
    }),
    Route::new(POST, "/admin/policies", AdminPage, |app, cx| {
        app.admin.create_policy(cx.req, cx.session()?, &cx.actor()?)
    }),
    Route::new(POST, "/admin/policies/assign", AdminPage, |app, cx| {
        app.admin.assign_policy(cx.req, cx.session()?, &cx.actor()?)
    }),
    Route::new(POST, "/admin/policies/default", AdminPage, |app, cx| {
        app.admin
            .default_policy(cx.req, cx.session()?, &cx.actor()?)
    }),
    Route::new(
        POST,
        "/admin/policies/assignments/{id}",
        AdminPage,
        |app, cx| {
            app.admin
                .change_assignment(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
        },
    ),
    Route::new(GET, "/admin/policies/{id}", AdminPage, |app, cx| {
        app.admin.policy_page(cx.session()?, cx.param("id"))
    }),
    Route::new(POST, "/admin/policies/{id}", AdminPage, |app, cx| {
        app.admin
            .save_policy(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
    }),
    Route::new(POST, "/admin/policies/{id}/delete", AdminPage, |app, cx| {
        app.admin
            .delete_policy(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
    }),
    Route::new(GET, "/admin/keys", AdminPage, |app, cx| {
        app.admin.keys_page(cx.session()?)
    }),
    Route::new(POST, "/admin/keys", AdminPage, |app, cx| {
        app.admin.create_key(cx.req, cx.session()?, &cx.actor()?)
    }),
    Route::new(POST, "/admin/keys/{id}", AdminPage, |app, cx| {
        app.admin
            .edit_key(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
    }),
    Route::new(POST, "/admin/keys/{id}/policy", AdminPage, |app, cx| {
        app.admin
            .key_policy(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
    }),
    Route::new(POST, "/admin/keys/{id}/rotate", AdminPage, |app, cx| {
        app.admin
            .rotate_key(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
    }),
    Route::new(POST, "/admin/keys/{id}/revoke", AdminPage, |app, cx| {
        app.admin
            .revoke_key(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
    }),
    Route::new(GET, "/admin/api-tokens", AdminPage, |app, cx| {
        app.admin.api_tokens_page(cx.session()?, None)
    }),
    Route::new(POST, "/admin/api-tokens", AdminPage, |app, cx| {
        app.admin
            .create_api_token(cx.req, cx.session()?, &cx.actor()?)
    }),
    Route::new(
        POST,
        "/admin/api-tokens/{id}/revoke",
        AdminPage,
        |app, cx| {
            app.admin
                .revoke_api_token(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
        },
    ),
    Route::new(GET, "/admin/idp", AdminPage, |app, cx| {
        app.admin.connections_page(cx.session()?, None)
    }),
    Route::new(POST, "/admin/idp", AdminPage, |app, cx| {
        app.admin
            .create_connection(cx.req, cx.session()?, &cx.actor()?)
    }),
    Route::new(GET, "/admin/idp/new", AdminPage, |app, cx| {
        app.admin.new_connection_page(cx.req, cx.session()?, None)
    }),
    Route::new(POST, "/admin/idp/scim-token", AdminPage, |app, cx| {
        app.admin
            .create_scim_token(cx.req, cx.session()?, &cx.actor()?)
    }),
    Route::new(
        POST,
        "/admin/idp/scim-tokens/{id}/revoke",
        AdminPage,
        |app, cx| {
            app.admin
                .revoke_scim_token(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
        },
    ),
    Route::new(GET, "/admin/idp/{id}", AdminPage, |app, cx| {
        app.admin
            .connection_page(cx.session()?, cx.param("id"), None)
    }),
    Route::new(POST, "/admin/idp/{id}/scim-token", AdminPage, |app, cx| {
        app.admin
            .create_connection_scim_token(cx.session()?, &cx.actor()?, cx.param("id"))
    }),
    Route::new(POST, "/admin/idp/{id}/metadata", AdminPage, |app, cx| {
        app.admin
            .replace_connection_metadata(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
    })
    .body(Body::Admin),
    Route::new(POST, "/admin/idp/{id}/options", AdminPage, |app, cx| {
        app.admin
            .set_connection_options(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
    }),
    Route::new(POST, "/admin/idp/{id}/remove", AdminPage, |app, cx| {
        app.admin
            .remove_connection(cx.req, cx.session()?, &cx.actor()?, cx.param("id"))
    }),
    Route::new(GET, "/admin/tls/ca.pem", AdminPage, |app, _| {
        app.admin.ca_certificate()
    }),
    Route::new(GET, "/admin/audit", AdminPage, |app, cx| {
        app.admin.audit_page(cx.req, cx.session()?)
    }),
    Route::new(GET, "/admin/audit.csv", AdminPage, |app, cx| {
        app.admin.audit_csv(cx.req)
    }),
    Route::new(ANY, "/admin/{*rest}", AdminPage, not_found),
    // --- admin API (described by admin::openapi; a test holds the two together) --------------
    Route::new(GET, "/api/v1/admin/openapi.json", AdminApi, |_, _| {
        Ok(crate::http::Response::json(
            200,
            &crate::admin::openapi::document(),
        ))
    }),
    Route::new(GET, "/api/v1/admin/users", AdminApi, |app, cx| {
        app.admin.api_users(cx.req)
    }),
    Route::new(GET, "/api/v1/admin/users/{id}", AdminApi, |app, cx| {
        app.admin.api_user(cx.param("id"))
    }),
    Route::new(
        GET,
        "/api/v1/admin/users/{id}/devices",
        AdminApi,
        |app, cx| app.admin.api_user_devices(cx.param("id")),
    ),
    Route::new(GET, "/api/v1/admin/explain", AdminApi, |app, cx| {
        app.admin.api_explain(cx.req)
    }),
    Route::new(DELETE, "/api/v1/admin/devices/{id}", AdminApi, |app, cx| {
        app.admin.api_deactivate(&cx.actor()?, cx.param("id"))
    }),
    Route::new(GET, "/api/v1/admin/licenses", AdminApi, |app, _| {
        app.admin.api_licenses()
    }),
    Route::new(POST, "/api/v1/admin/licenses", AdminApi, |app, cx| {
        app.admin.api_add_license(cx.req, &cx.actor()?)
    }),
    Route::new(PATCH, "/api/v1/admin/licenses/{id}", AdminApi, |app, cx| {
        app.admin
            .api_change_license(cx.req, &cx.actor()?, cx.param("id"))
    }),
    Route::new(POST, "/api/v1/admin/sublicenses", AdminApi, |app, cx| {
        app.admin.api_add_sublicense(cx.req, &cx.actor()?)
    }),
    Route::new(
        PATCH,
        "/api/v1/admin/sublicenses/{id}",
        AdminApi,
        |app, cx| {
            app.admin
                .api_change_sublicense(cx.req, &cx.actor()?, cx.param("id"))
        },
    ),
    Route::new(
        DELETE,
        "/api/v1/admin/sublicenses/{id}",
        AdminApi,
        |app, cx| {
            app.admin
                .api_remove_sublicense(&cx.actor()?, cx.param("id"))
        },
    ),
    Route::new(GET, "/api/v1/admin/mappings", AdminApi, |app, _| {
        app.admin.api_mappings()
    }),
    Route::new(POST, "/api/v1/admin/mappings", AdminApi, |app, cx| {
        app.admin.api_add_mapping(cx.req, &cx.actor()?)
    }),
    Route::new(
        DELETE,
        "/api/v1/admin/mappings/{id}",
        AdminApi,
        |app, cx| app.admin.api_remove_mapping(&cx.actor()?, cx.param("id")),
    ),
    Route::new(GET, "/api/v1/admin/profile", AdminApi, |app, cx| {
        app.admin.api_profile(cx.req)
    }),
    Route::new(POST, "/api/v1/admin/profile", AdminApi, |app, cx| {
        app.admin.api_profile_with(cx.req, &cx.actor()?)
    }),
    Route::new(GET, "/api/v1/admin/profile/info", AdminApi, |app, _| {
        app.admin.api_profile_info()
    }),
    Route::new(GET, "/api/v1/admin/invitations", AdminApi, |app, _| {
        app.admin.api_invitations()
    }),
    // Up to 10,000 addresses: the portal's body limit, not the API's.
    Route::new(POST, "/api/v1/admin/invitations", AdminApi, |app, cx| {
        app.admin.api_invite(cx.req, &cx.actor()?)
    })
    .body(Body::Admin),
    Route::new(
        POST,
        "/api/v1/admin/invitations/{id}/resend",
        AdminApi,
        |app, cx| {
            app.admin
                .api_resend_invitation(&cx.actor()?, cx.param("id"))
        },
    ),
    Route::new(
        DELETE,
        "/api/v1/admin/invitations/{id}",
        AdminApi,
        |app, cx| {
            app.admin
                .api_revoke_invitation(&cx.actor()?, cx.param("id"))
        },
    ),
    Route::new(GET, "/api/v1/admin/outbox", AdminApi, |app, _| {
        app.admin.api_outbox()
    }),
    Route::new(POST, "/api/v1/admin/outbox/test", AdminApi, |app, cx| {
        app.admin.api_test_email(cx.req, &cx.actor()?)
    }),
    Route::new(GET, "/api/v1/admin/usage-history", AdminApi, |app, cx| {
        app.admin.api_history(cx.req)
    }),
    Route::new(GET, "/api/v1/admin/vms", AdminApi, |app, cx| {
        app.admin.api_vms(cx.req)
    }),
    // --- the distribution point: images, uploads ---------------------------------------
    Route::new(GET, "/api/v1/admin/images", AdminApi, |app, _| {
        files::list_images(app)
    }),
    Route::new(POST, "/api/v1/admin/images/uploads", AdminApi, |app, cx| {
        files::start_image_upload(app, cx)
    }),
    Route::new(
        POST,
        "/api/v1/admin/images/{image}/assignments",
        AdminApi,
        files::assign,
    ),
    Route::new(
        DELETE,
        "/api/v1/admin/images/{image}/assignments/{id}",
        AdminApi,
        files::unassign,
    ),
    Route::new(
        DELETE,
        "/api/v1/admin/images/{image}/versions/{version}",
        AdminApi,
        files::delete_version,
    ),
    Route::new(GET, "/api/v1/admin/updates", AdminApi, |app, _| {
        updates::overview(app)
    }),
    Route::new(
        POST,
        "/api/v1/admin/updates/uploads",
        AdminApi,
        updates::start_upload,
    ),
    Route::new(
        POST,
        "/api/v1/admin/updates/{version}/retire",
        AdminApi,
        updates::retire,
    ),
    Route::new(GET, "/api/v1/admin/uploads", AdminApi, |app, _| {
        files::list_uploads(app)
    }),
    Route::new(GET, "/api/v1/admin/uploads/{id}", AdminApi, |app, cx| {
        files::upload_status(app, cx)
    }),
    Route::new(PUT, "/api/v1/admin/uploads/{id}", AdminApi, |app, cx| {
        files::put_piece(app, cx)
    })
    .body(Body::Upload),
    Route::new(DELETE, "/api/v1/admin/uploads/{id}", AdminApi, |app, cx| {
        files::cancel_upload(app, cx)
    }),
    Route::new(GET, "/api/v1/admin/policies", AdminApi, |app, _| {
        app.admin.api_policies()
    }),
    Route::new(POST, "/api/v1/admin/policies", AdminApi, |app, cx| {
        app.admin.api_create_policy(cx.req, &cx.actor()?)
    }),
    Route::new(GET, "/api/v1/admin/policies/{id}", AdminApi, |app, cx| {
        app.admin.api_policy(cx.param("id"))
    }),
    Route::new(PATCH, "/api/v1/admin/policies/{id}", AdminApi, |app, cx| {
        app.admin
            .api_change_policy(cx.req, &cx.actor()?, cx.param("id"))
    }),
    Route::new(
        DELETE,
        "/api/v1/admin/policies/{id}",
        AdminApi,
        |app, cx| app.admin.api_delete_policy(&cx.actor()?, cx.param("id")),
    ),
    Route::new(
        POST,
        "/api/v1/admin/policies/{id}/assignments",
        AdminApi,
        |app, cx| {
            app.admin
                .api_assign_policy(cx.req, &cx.actor()?, cx.param("id"))
        },
    ),
    Route::new(
        PATCH,
        "/api/v1/admin/policy-assignments/{id}",
        AdminApi,
        |app, cx| {
            app.admin
                .api_reprioritize(cx.req, &cx.actor()?, cx.param("id"))
        },
    ),
    Route::new(
        DELETE,
        "/api/v1/admin/policy-assignments/{id}",
        AdminApi,
        |app, cx| app.admin.api_unassign(&cx.actor()?, cx.param("id")),
    ),
    Route::new(GET, "/api/v1/admin/license-keys", AdminApi, |app, _| {
        app.admin.api_keys()
    }),
    Route::new(POST, "/api/v1/admin/license-keys", AdminApi, |app, cx| {
        app.admin.api_create_key(cx.req, &cx.actor()?)
    }),
    Route::new(
        PATCH,
        "/api/v1/admin/license-keys/{id}",
        AdminApi,
        |app, cx| {
            app.admin
                .api_change_key(cx.req, &cx.actor()?, cx.param("id"))
        },
    ),
    Route::new(
        DELETE,
        "/api/v1/admin/license-keys/{id}",
        AdminApi,
        |app, cx| app.admin.api_revoke_key(&cx.actor()?, cx.param("id")),
    ),
    Route::new(
        POST,
        "/api/v1/admin/license-keys/{id}/rotate",
        AdminApi,
        |app, cx| app.admin.api_rotate_key(&cx.actor()?, cx.param("id")),
    ),
    Route::new(
        GET,
        "/api/v1/admin/license-keys/{id}/devices",
        AdminApi,
        |app, cx| app.admin.api_key_devices(cx.param("id")),
    ),
    Route::new(GET, "/api/v1/admin/scim-tokens", AdminApi, |app, _| {
        app.admin.api_tokens(crate::db::tokens::Scope::Scim)
    }),
    Route::new(POST, "/api/v1/admin/scim-tokens", AdminApi, |app, cx| {
        app.admin
            .api_create_token(cx.req, &cx.actor()?, crate::db::tokens::Scope::Scim)
    }),
    Route::new(
        DELETE,
        "/api/v1/admin/scim-tokens/{id}",
        AdminApi,
        |app, cx| {
            app.admin
                .api_revoke_token(&cx.actor()?, crate::db::tokens::Scope::Scim, cx.param("id"))
        },
    ),
    Route::new(GET, "/api/v1/admin/admin-tokens", AdminApi, |app, _| {
        app.admin.api_tokens(crate::db::tokens::Scope::Admin)
    }),
    Route::new(POST, "/api/v1/admin/admin-tokens", AdminApi, |app, cx| {
        app.admin
            .api_create_token(cx.req, &cx.actor()?, crate::db::tokens::Scope::Admin)
    }),
    Route::new(
        DELETE,
        "/api/v1/admin/admin-tokens/{id}",
        AdminApi,
        |app, cx| {
            app.admin.api_revoke_token(
                &cx.actor()?,
                crate::db::tokens::Scope::Admin,
                cx.param("id"),
            )
        },
    ),
    Route::new(GET, "/api/v1/admin/connections", AdminApi, |app, _| {
        app.admin.api_connections()
    }),
    Route::new(
        PATCH,
        "/api/v1/admin/connections/{id}",
        AdminApi,
        |app, cx| {
            app.admin
                .api_change_connection(cx.req, &cx.actor()?, cx.param("id"))
        },
    ),
    Route::new(POST, "/api/v1/admin/entitlements", AdminApi, |app, cx| {
        app.admin.api_import_entitlement(cx.req, &cx.actor()?)
    }),
    Route::new(GET, "/api/v1/admin/audit", AdminApi, |app, cx| {
        app.admin.api_audit(cx.req)
    }),
    Route::new(ANY, "/api/v1/admin/{*rest}", AdminApi, not_found),
    // --- SCIM 2.0 ---------------------------------------------------------------------------
    Route::new(GET, "/scim/v2/ServiceProviderConfig", Scim, |app, _| {
        app.scim.service_provider_config()
    }),
    Route::new(GET, "/scim/v2/ResourceTypes", Scim, |app, _| {
        app.scim.resource_types()
    }),
    Route::new(GET, "/scim/v2/ResourceTypes/{name}", Scim, |app, cx| {
        app.scim.resource_type(cx.param("name"))
    }),
    Route::new(GET, "/scim/v2/Schemas", Scim, |app, _| app.scim.schemas()),
    Route::new(GET, "/scim/v2/Schemas/{id}", Scim, |app, cx| {
        app.scim.schema(cx.param("id"))
    }),
    Route::new(GET, "/scim/v2/Users", Scim, |app, cx| {
        app.scim.list_users(cx)
    }),
    Route::new(POST, "/scim/v2/Users", Scim, |app, cx| {
        app.scim.create_user(cx)
    }),
    Route::new(POST, "/scim/v2/Users/.search", Scim, |app, cx| {
        app.scim.search_users(cx)
    }),
    Route::new(GET, "/scim/v2/Users/{id}", Scim, |app, cx| {
        app.scim.get_user(cx)
    }),
    Route::new(PUT, "/scim/v2/Users/{id}", Scim, |app, cx| {
        app.scim.replace_user(cx)
    }),
    Route::new(PATCH, "/scim/v2/Users/{id}", Scim, |app, cx| {
        app.scim.patch_user(cx)
    }),
    Route::new(DELETE, "/scim/v2/Users/{id}", Scim, |app, cx| {
        app.scim.delete_user(cx)
    }),
    Route::new(GET, "/scim/v2/Groups", Scim, |app, cx| {
        app.scim.list_groups(cx)
    }),
    Route::new(POST, "/scim/v2/Groups", Scim, |app, cx| {
        app.scim.create_group(cx)
    }),
    Route::new(POST, "/scim/v2/Groups/.search", Scim, |app, cx| {
        app.scim.search_groups(cx)
    }),
    Route::new(GET, "/scim/v2/Groups/{id}", Scim, |app, cx| {
        app.scim.get_group(cx)
    }),
    Route::new(PUT, "/scim/v2/Groups/{id}", Scim, |app, cx| {
        app.scim.replace_group(cx)
    }),
    Route::new(PATCH, "/scim/v2/Groups/{id}", Scim, |app, cx| {
        app.scim.patch_group(cx)
    }),
    Route::new(DELETE, "/scim/v2/Groups/{id}", Scim, |app, cx| {
        app.scim.delete_group(cx)
    }),
    Route::new(POST, "/scim/v2/.search", Scim, |app, cx| {
        app.scim.search_all(cx)
    }),
    Route::new(POST, "/scim/v2/Bulk", Scim, |_, _| {
        Err(HttpError::scim(
            Reason::UnsupportedFeature,
            "invalidSyntax",
            "Bulk operations are not supported (see /ServiceProviderConfig).",
        ))
    }),
    Route::new(ANY, "/scim/v2", Scim, not_found),
    Route::new(ANY, "/scim/v2/{*rest}", Scim, not_found),
    // --- seatgate demo's identity provider ----------------------------------------------------
    Route::new(GET, crate::demo::idp::SSO_PATH, Surface::Demo, |app, cx| {
        app.demo_idp()?.sign_in_page(cx.req)
    }),
    Route::new(
        POST,
        crate::demo::idp::SSO_PATH,
        Surface::Demo,
        |app, cx| app.demo_idp()?.respond(cx.req),
    ),
    Route::new(
        GET,
        crate::demo::idp::POST_SCRIPT_PATH,
        Surface::Demo,
        |app, _| Ok(app.demo_idp()?.post_script()),
    ),
    Route::new(ANY, "/demo-idp/{*rest}", Surface::Demo, |app, cx| {
        app.demo_idp()?;
        not_found(app, cx)
    }),
];

/// Where a request goes: its route (for its method, else the first at its pattern, which
/// the pipeline authenticates with before answering 405) and the path's parameters.
pub struct Matched<'p> {
    /// All routes declared at the matched pattern.
    at_pattern: &'static Pattern,
    /// The one among them for the request's method.
    for_method: Option<usize>,
    pub params: Vec<(&'static str, &'p str)>,
}

impl Matched<'_> {
    /// The methods the path accepts, for `Allow`.
    pub fn allow(&self) -> &'static str {
        &self.at_pattern.allow
    }

    /// The route for the request's method; `None` means 405.
    pub fn route(&self) -> Option<&'static Route> {
        self.for_method.map(|i| &ROUTES[i])
    }

    fn representative_index(&self) -> usize {
        self.for_method.unwrap_or(self.at_pattern.routes[0])
    }

    /// The route the pipeline authenticates and shapes errors with (the method's, else
    /// the first at the pattern).
    pub fn representative(&self) -> &'static Route {
        &ROUTES[self.representative_index()]
    }

    /// The name logs and metrics use: the pattern, never the raw path (which could carry
    /// identifiers); `{*x}` shown as `{x}`; a catch-all as `…/(unmatched)`.
    pub fn name(&self) -> &'static str {
        ROUTER
            .names
            .get(self.representative_index())
            .map_or("(unmatched)", String::as_str)
    }
}

/// The routes declared at one pattern.
struct Pattern {
    /// Indexes into [`ROUTES`].
    routes: Vec<usize>,
    /// Their methods, as the `Allow` header of a 405 lists them.
    allow: String,
}

/// The router: each pattern once.
struct Router {
    matcher: matchit::Router<Pattern>,
    /// Each route's name in logs and metrics (see [`Matched::name`]).
    names: Vec<String>,
}

static ROUTER: LazyLock<Router> = LazyLock::new(|| {
    let mut by_pattern: Vec<(&'static str, Vec<usize>)> = Vec::new();
    for (i, r) in ROUTES.iter().enumerate() {
        match by_pattern.iter_mut().find(|(p, _)| *p == r.pattern) {
            Some((_, list)) => list.push(i),
            None => by_pattern.push((r.pattern, vec![i])),
        }
    }
    let mut matcher = matchit::Router::new();
    for (pattern, routes) in by_pattern {
        let methods = routes.iter().fold(0, |m, &i| m | ROUTES[i].methods.0);
        let allow = Methods(methods).allow();
        // The table is static and `the_table_builds` tests it: a conflict is a programming
        // error caught before any build ships.
        if let Err(e) = matcher.insert(pattern, Pattern { routes, allow }) {
            panic!("the route table has a conflicting pattern {pattern}: {e}");
        }
    }
    let names = ROUTES.iter().map(display_name).collect();
    Router { matcher, names }
});

fn display_name(r: &Route) -> String {
    match r.pattern.split_once("{*") {
        Some((prefix, _)) if r.methods == ANY => format!("{prefix}(unmatched)"),
        _ if r.methods == ANY => format!("{}/(unmatched)", r.pattern),
        _ => r.pattern.replace("{*", "{"),
    }
}

/// Finds the route for `method` and `path`; `None` when no pattern matches.
pub fn find<'p>(method: &str, path: &'p str) -> Option<Matched<'p>> {
    // `/admin/users/` is `/admin/users`, as it always was.
    let path = match path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => path,
    };
    let m = ROUTER.matcher.at(path).ok()?;
    let at_pattern: &'static Pattern = m.value;
    let for_method = at_pattern
        .routes
        .iter()
        .copied()
        .find(|&i| ROUTES[i].methods.accepts(method));
    let params = m.params.iter().collect();
    Some(Matched {
        at_pattern,
        for_method,
        params,
    })
}

/// The body cap for a request head (the gatekeeper reads it before the body arrives).
pub fn body_cap(method: &str, path: &str, limits: &Limits) -> usize {
    body_class(method, path).cap(limits)
}

fn body_class(method: &str, path: &str) -> Body {
    find(method, path)
        .map(|m| m.representative().body)
        .unwrap_or(Body::Other)
}

/// Whether the gatekeeper writes this request's body to a stored file instead of
/// forwarding it (an upload's `PUT`).
pub fn streams_body_to_disk(method: &str, path: &str) -> bool {
    method == "PUT" && body_class(method, path) == Body::Upload
}

/// The error format for a path, for errors raised before the route runs (the gatekeeper).
pub fn format_for(path: &str) -> Format {
    find("GET", path)
        .map(|m| m.representative().surface.format())
        .unwrap_or(Format::Api)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_builds_and_every_route_is_found_at_its_own_pattern() {
        for (i, r) in ROUTES.iter().enumerate() {
            let path = r.pattern.replace("{*", "{").replace(['{', '}'], "x");
            let method = ["GET", "POST", "PUT", "PATCH", "DELETE"]
                .into_iter()
                .find(|m| r.methods.accepts(m))
                .unwrap_or("GET");
            let m = find(method, &path).unwrap_or_else(|| panic!("{} is not found", r.pattern));
            assert!(
                m.route()
                    .is_some_and(|found| std::ptr::eq(found, &ROUTES[i]))
                    || r.is_fallback(),
                "{method} {path} does not reach {}",
                r.pattern
            );
        }
    }

    #[test]
    fn no_two_routes_at_a_pattern_take_the_same_method() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    a.pattern != b.pattern || a.methods.0 & b.methods.0 == 0,
                    "{} is declared twice for a method",
                    a.pattern
                );
            }
        }
    }

    #[test]
    fn state_changing_routes_of_a_session_need_its_csrf_token() {
        for r in ROUTES
            .iter()
            .filter(|r| r.methods.changes_state() && !r.is_fallback())
        {
            match r.auth {
                Auth::AdminSession => assert_eq!(r.csrf, Csrf::SessionForm, "{}", r.pattern),
                Auth::AdminTokenOrSession => {
                    assert_eq!(r.csrf, Csrf::SessionHeader, "{}", r.pattern)
                }
                // Before any session: the forms carry their own double-submit token.
                Auth::None if r.surface != Surface::DeviceApi => assert!(
                    matches!(r.csrf, Csrf::DoubleSubmitInHandler | Csrf::SamlBinding),
                    "{} changes state without a session and without a form token",
                    r.pattern
                ),
                _ => {}
            }
        }
    }

    #[test]
    fn paths_are_classified_as_before() {
        let limits = Limits::default();
        for (method, path, body, format) in [
            ("POST", "/scim/v2/Users", Body::Scim, Format::Scim),
            ("GET", "/scim/v2/nowhere/deep", Body::Scim, Format::Scim),
            ("POST", "/saml/acs/conn-1", Body::Saml, Format::Html),
            ("POST", "/api/v1/activations", Body::Api, Format::Api),
            ("POST", "/admin/licenses", Body::Admin, Format::Html),
            ("POST", "/admin/users/", Body::Admin, Format::Html),
            ("POST", "/setup", Body::Admin, Format::Html),
            ("POST", "/activate/abc", Body::Other, Format::Html),
            ("GET", "/healthz", Body::Other, Format::Api),
            ("GET", "/no/such/thing", Body::Other, Format::Api),
        ] {
            assert_eq!(body_cap(method, path, &limits), body.cap(&limits), "{path}");
            assert_eq!(format_for(path), format, "{path}");
        }
    }

    #[test]
    fn a_405_lists_every_method_of_the_address() {
        let m = find("DELETE", "/admin/licenses").expect("found");
        assert!(m.route().is_none());
        assert_eq!(m.allow(), "GET, HEAD, POST");
        assert_eq!(
            find("POST", "/scim/v2/Users/abc").expect("found").allow(),
            "GET, HEAD, PUT, PATCH, DELETE"
        );
        assert_eq!(
            find("GET", "/admin/users/u-1").expect("found").name(),
            "/admin/users/{id}"
        );
        assert_eq!(
            find("GET", "/admin/nowhere").expect("found").name(),
            "/admin/(unmatched)"
        );
        assert_eq!(
            find("POST", "/saml/acs/c-1").expect("found").name(),
            "/saml/acs/{connection}"
        );
    }
}
