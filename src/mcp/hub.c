/* Placeholder replaced below. */
#include "mcp/hub.h"
int mg_hub_start(struct mg_gw *gw, const char *sock_path, struct mg_buf *err)
{
    MG_UNUSED(gw);
    MG_UNUSED(sock_path);
    MG_UNUSED(err);
    return 0;
}
void mg_hub_post_config(struct mg_gw *gw) { MG_UNUSED(gw); }
void mg_hub_post_drain(void) {}
void mg_hub_join(void) {}
