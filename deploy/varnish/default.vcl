vcl 4.1;
# Varnish in front of gunicorn, purged precisely: the application lists each response's version
# keys in an xkey header (CONDITIONAL_SURROGATE_KEY_HEADERS = ["xkey"]) and, after every commit,
# sends PURGE with "xkey-purge: <keys>" (CONDITIONAL_PURGE_BACKEND =
# "django_conditional.purge.varnish.VarnishPurge"). Objects may then live long: a write evicts
# exactly the pages that showed what it changed. Needs varnish-modules (the xkey vmod).
# The double-brace placeholders are filled by the tests (tests/proxies.py) and by your deployment tool.

import xkey;

backend default {
    .host = "{{ app_host }}";
    .port = "{{ app_port }}";
}

acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (req.http.xkey-purge) {
            set req.http.n-gone = xkey.purge(req.http.xkey-purge);
        } elsif (req.http.xkey-softpurge) {
            set req.http.n-gone = xkey.softpurge(req.http.xkey-softpurge);
        } else {
            return (synth(400, "PURGE needs xkey-purge or xkey-softpurge"));
        }
        return (synth(200, "Invalidated " + req.http.n-gone + " objects"));
    }
    # The demo API authenticates writes only; reads are public and cacheable.
    if (req.method == "GET" || req.method == "HEAD") {
        unset req.http.Authorization;
        unset req.http.Cookie;
    }
}

sub vcl_backend_response {
    if (beresp.status == 200 && !(beresp.http.Cache-Control ~ "private")) {
        # Long-lived: purges, not expiry, keep it fresh.
        set beresp.ttl = {{ ttl }};
        set beresp.grace = 10s;
    }
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    unset resp.http.xkey;
}
