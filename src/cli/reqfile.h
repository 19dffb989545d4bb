/* The input files of `mcpgate policy test` (docs/policy.md, "Testing a
 * policy"): the request file — a JSON-RPC body as a client would POST it,
 * or an object describing the HTTP request around one — and the identity
 * file, the JSON form of an identity (mg_identity_from_json) plus the OAuth
 * client. Pure: text in, values out, errors as one-line messages. */
#ifndef MG_CLI_REQFILE_H
#define MG_CLI_REQFILE_H

#include "core/common.h"

#include <jansson.h>
#include <sys/socket.h>

struct mg_identity;

#define MG_REQFILE_MAX_BYTES (64 * 1024 * 1024) /* a request or identity file */

struct mg_reqfile {
    char http_method[8]; /* "POST" (default), "GET", "DELETE", "HEAD", "OPTIONS" */
    char *path;          /* the request path without the query; NULL: the route's path */
    bool has_source;
    struct sockaddr_storage source; /* when has_source: AF_INET or AF_INET6 */
    char source_ip[64];             /* as written, when has_source */
    bool has_time;
    int64_t now; /* unix seconds, when has_time */
    char *body;  /* the POST body, byte for byte; NULL for other methods */
    size_t body_len;
    /* Headers (NULL: absent): Mcp-Method, Mcp-Name, MCP-Protocol-Version. */
    char *mcp_method, *mcp_name, *protocol_version;
    json_t *tools; /* a tools/list result's "tools": the classes the gateway would have
                      learned from the upstream; NULL: none */
    char *answers; /* responses in the body answer a server request with this method
                      (as if the gateway had relayed it); NULL: unmatched */
};

/* Parses a request file. The form is told by the top level: an array, or
 * an object with a "jsonrpc" member, is the body itself (its bytes are the
 * body); any other object describes the request (keys http_method, path,
 * source_ip, time, headers, tools, body; a body given as a string is used
 * byte for byte, any other JSON value is serialised). Returns 0, or
 * MG_EINVAL / MG_ELIMIT with a message in err and *out zeroed. */
int mg_reqfile_parse(const char *text, size_t len, struct mg_reqfile *out, char *err,
                     size_t err_cap);
void mg_reqfile_fini(struct mg_reqfile *r);

/* Parses an identity file: an object with sub, email, name, groups, claims,
 * idp, method (none | oauth | service_account | jwt | client; default oauth,
 * a signed-in caller) and client_id; other keys are errors. Returns 0 and
 * *out (refs = 1), or MG_EINVAL / MG_ELIMIT with a message in err. */
int mg_reqfile_identity(const char *text, size_t len, struct mg_identity **out, char *err,
                        size_t err_cap);

#endif
