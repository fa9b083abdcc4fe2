//! A minimal browser for login flows: follows redirects and submits the forms of the SMART
//! authorization server's pages (oidc-provider's login and consent: logs in as `alice`),
//! keeping cookies, until it reaches a URL the caller stops at.
#![allow(dead_code)]

use std::collections::BTreeMap;

/// Where the browser stopped and the cookies it holds (name → value; loopback ports share
/// cookies, as browsers do).
pub struct Stopped {
    pub url: reqwest::Url,
    pub cookies: BTreeMap<String, String>,
}

impl Stopped {
    pub fn query(&self) -> BTreeMap<String, String> {
        self.url.query_pairs().into_owned().collect()
    }

    pub fn cookie_header(&self) -> String {
        cookie_header(&self.cookies)
    }
}

fn cookie_header(c: &BTreeMap<String, String>) -> String {
    c.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Browses from `start` until a redirect or form leads to a URL for which `stop` is true
/// (that URL is not requested).
pub fn browse(start: &str, stop: impl Fn(&reqwest::Url) -> bool) -> Stopped {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let mut cookies: BTreeMap<String, String> = BTreeMap::new();
    let mut next = (
        String::from("GET"),
        start.to_owned(),
        Vec::<(String, String)>::new(),
    );
    for _ in 0..16 {
        let (method, url, form) = next.clone();
        let req = agent
            .request(&method, &url)
            .set("Cookie", &cookie_header(&cookies));
        let pairs: Vec<(&str, &str)> = form.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let resp = match if method == "POST" {
            req.send_form(&pairs)
        } else {
            req.call()
        } {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {url}: {e}"),
        };
        for c in resp.all("set-cookie") {
            let pair = c.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                if v.trim().is_empty() {
                    cookies.remove(k.trim());
                } else {
                    cookies.insert(k.trim().to_owned(), v.trim().to_owned());
                }
            }
        }
        if let Some(loc) = resp.header("location") {
            let target = reqwest::Url::parse(&url).unwrap().join(loc).unwrap();
            if stop(&target) {
                return Stopped {
                    url: target,
                    cookies,
                };
            }
            next = ("GET".into(), target.to_string(), Vec::new());
            continue;
        }
        let status = resp.status();
        let html = resp.into_string().unwrap_or_default();
        assert_eq!(status, 200, "{url}: {html}");
        let action = html
            .split("action=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("no form on {url}: {html}"));
        let mut fields = Vec::new();
        for input in html.split("<input").skip(1) {
            let attr = |name: &str| {
                input
                    .split(&format!("{name}=\""))
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .map(str::to_owned)
            };
            match (attr("name"), attr("type").as_deref()) {
                (Some(n), _) if n == "login" => fields.push((n, "alice".to_owned())),
                (Some(n), _) if n == "password" => fields.push((n, "any".to_owned())),
                (Some(n), Some("hidden")) => fields.push((n, attr("value").unwrap_or_default())),
                _ => {}
            }
        }
        let target = reqwest::Url::parse(&url).unwrap().join(action).unwrap();
        if stop(&target) {
            return Stopped {
                url: target,
                cookies,
            };
        }
        next = ("POST".into(), target.to_string(), fields);
    }
    panic!("the browser did not reach a stop from {start}");
}
