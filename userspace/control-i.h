/* SPDX-License-Identifier: MIT */
/*
 * control-i.h - private to the control socket (control.c: the socket, clients and commands;
 * control_show.c: the documents). Each show function writes its document, text or JSON, into
 * o and returns 0 (or -ENOMEM).
 */
#ifndef SPLICED_CONTROL_I_H
#define SPLICED_CONTROL_I_H

#include "daemon.h"
#include "obuf.h"
#include "health_state.h"

/* a server's state word ("up", "down", "draining", "maintenance", "ejected") and admin setting */
const char *control_server_state(struct server *s, const struct health_view *v);
const char *control_admin_name(uint8_t admin);

int control_show_info(struct daemon *d, int json, struct obuf *o);
int control_show_pools(struct daemon *d, int json, struct obuf *o);
int control_show_routes(struct daemon *d, int json, struct obuf *o);
int control_show_servers(struct daemon *d, int json, struct obuf *o);
int control_show_connections(struct daemon *d, int json, struct obuf *o);
int control_show_stats(struct daemon *d, int json, struct obuf *o);
int control_show_config(struct daemon *d, int json, struct obuf *o);

#endif
