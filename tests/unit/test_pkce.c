/* Unit tests for src/authn/pkce: the RFC 7636 Appendix B vector, S256 only
 * (plain and missing refused with distinct reasons), verifier and challenge
 * shape rules (§4.1, §4.2), and mismatches. */
#include "authn/pkce.h"

#include "tap.h"

#define V_RFC "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define C_RFC "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

static void expect_denied(const char *m, const char *c, const char *v, const char *want_why,
                          const char *name)
{
    const char *why = NULL;
    TAP_IS_INT(mg_pkce_verify(m, c, v, &why), MG_EDENIED, "%s denied", name);
    TAP_IS_STR(why, want_why, "%s reason", name);
}

int main(void)
{
    const char *why = "unset";
    char c[MG_PKCE_CHALLENGE_LEN + 1];
    char buf[200];

    TAP_IS_INT(mg_pkce_challenge_s256(V_RFC, c), MG_OK, "challenge computed");
    TAP_IS_STR(c, C_RFC, "RFC 7636 Appendix B challenge");
    TAP_IS_INT(mg_pkce_verify("S256", C_RFC, V_RFC, &why), MG_OK, "Appendix B verifies");
    TAP_OK(why == NULL, "no reason on success");
    TAP_IS_INT(mg_pkce_verify("S256", C_RFC, V_RFC, NULL), MG_OK, "why may be NULL");
    TAP_OK(mg_pkce_challenge_valid(C_RFC), "Appendix B challenge valid");

    /* Method. */
    expect_denied("plain", V_RFC, V_RFC, "code_challenge_method plain is not allowed", "plain");
    expect_denied(NULL, C_RFC, V_RFC, "code_challenge_method missing", "missing method");
    expect_denied("", C_RFC, V_RFC, "code_challenge_method missing", "empty method");
    expect_denied("s256", C_RFC, V_RFC, "unsupported code_challenge_method", "lowercase s256");
    expect_denied("S256 ", C_RFC, V_RFC, "unsupported code_challenge_method", "S256 + space");
    expect_denied("S512", C_RFC, V_RFC, "unsupported code_challenge_method", "S512");
    TAP_OK(mg_pkce_method_valid("S256") && !mg_pkce_method_valid("plain") &&
               !mg_pkce_method_valid(NULL),
           "method_valid");

    /* Challenge. */
    expect_denied("S256", NULL, V_RFC, "code_challenge missing", "missing challenge");
    expect_denied("S256", "", V_RFC, "code_challenge missing", "empty challenge");
    expect_denied("S256", C_RFC "=", V_RFC, "malformed code_challenge", "padded challenge");
    expect_denied("S256", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c", V_RFC,
                  "malformed code_challenge", "42-char challenge");
    expect_denied("S256", C_RFC "A", V_RFC, "malformed code_challenge", "44-char challenge");
    expect_denied("S256", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM", V_RFC,
                  "malformed code_challenge", "'+' in challenge");
    expect_denied("S256", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN", V_RFC,
                  "malformed code_challenge", "non-canonical challenge");
    TAP_OK(!mg_pkce_challenge_valid(NULL) && !mg_pkce_challenge_valid("") &&
               !mg_pkce_challenge_valid(C_RFC "=") &&
               !mg_pkce_challenge_valid("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw/cM"),
           "challenge_valid refuses bad shapes");

    /* Verifier. */
    expect_denied("S256", C_RFC, NULL, "code_verifier missing", "missing verifier");
    expect_denied("S256", C_RFC, "", "code_verifier missing", "empty verifier");
    expect_denied("S256", C_RFC, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX",
                  "malformed code_verifier", "42-char verifier");
    memset(buf, 'a', 129);
    buf[129] = '\0';
    TAP_IS_INT(mg_pkce_challenge_s256(buf, c), MG_OK, "challenge for 129 chars");
    expect_denied("S256", c, buf, "malformed code_verifier", "129-char verifier");
    buf[128] = '\0';
    TAP_IS_INT(mg_pkce_challenge_s256(buf, c), MG_OK, "challenge for 128 chars");
    TAP_IS_INT(mg_pkce_verify("S256", c, buf, &why), MG_OK, "128-char verifier accepted");
    buf[43] = '\0';
    TAP_IS_INT(mg_pkce_challenge_s256(buf, c), MG_OK, "challenge for 43 chars");
    TAP_IS_INT(mg_pkce_verify("S256", c, buf, &why), MG_OK, "43-char verifier accepted");
    memcpy(buf, "AZaz09-._~", 10);
    TAP_IS_INT(mg_pkce_challenge_s256(buf, c), MG_OK, "challenge for full alphabet");
    TAP_IS_INT(mg_pkce_verify("S256", c, buf, &why), MG_OK, "every unreserved char accepted");
    static const char badc[] = {'+', '/', '=', ' ', '%', '!', '\t', (char)0xc3};
    for (size_t i = 0; i < sizeof badc; i++) {
        buf[5] = badc[i];
        TAP_IS_INT(mg_pkce_challenge_s256(buf, c), MG_OK, "challenge");
        expect_denied("S256", c, buf, "malformed code_verifier", "verifier with bad char");
    }

    /* Mismatch. */
    expect_denied("S256", C_RFC, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
                  "code_verifier does not match code_challenge", "wrong verifier");
    expect_denied("S256", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cQ", V_RFC,
                  "code_verifier does not match code_challenge", "wrong challenge");
    expect_denied("S256", V_RFC, V_RFC, "code_verifier does not match code_challenge",
                  "verifier as challenge (plain) under S256");
    return tap_done();
}
