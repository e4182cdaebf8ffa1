vcl 4.1;
# Varnish baseline of make bench (a Go text/template: the runner fills in
# the origin port). POST bodies are cached with std.cache_req_body and
# hashed with bodyaccess (varnish-modules), and the tenant (authorization)
# is hashed too — keyed as modelcache keys a request. Coalescing is
# Varnish's waiting list; stale-while-revalidate is grace. Every prefix
# mirrors one route of envoy/bench/cache.yaml.

import std;
import bodyaccess;

backend origin {
    .host = "127.0.0.1";
    .port = "{{.OriginPort}}";
    .first_byte_timeout = 60s;
}

sub vcl_recv {
    unset req.http.x-body-len;
    unset req.http.x-cache;
    if (req.url ~ "^/(hit|coalesce|swr)/" && req.method == "POST") {
        std.cache_req_body(1MB);
        set req.http.x-body-len = bodyaccess.len_req_body();
        if (req.http.x-body-len == "-1") {
            return (synth(400, "body"));
        }
        return (hash);
    }
    return (pass);
}

sub vcl_hash {
    hash_data(req.url);
    if (req.http.authorization) {
        hash_data(req.http.authorization);
    }
    if (req.http.x-body-len) {
        bodyaccess.hash_req_body();
    }
    return (lookup);
}

sub vcl_hit {
    if (obj.ttl <= 0s) {
        set req.http.x-cache = "grace";
    } else {
        set req.http.x-cache = "hit";
    }
}

sub vcl_miss {
    set req.http.x-cache = "miss";
}

sub vcl_backend_fetch {
    # Varnish turns cached lookups into GETs: put the method back.
    if (bereq.http.x-body-len) {
        set bereq.method = "POST";
    }
}

sub vcl_backend_response {
    if (bereq.url ~ "^/swr/") {
        set beresp.ttl = 2s;
        set beresp.grace = 30s;
    } else {
        set beresp.ttl = 24h;
        set beresp.grace = 0s;
    }
}

sub vcl_deliver {
    if (req.http.x-cache) {
        set resp.http.x-cache = req.http.x-cache;
    }
}
