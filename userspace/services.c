// SPDX-License-Identifier: MIT
/*
 * services.c - the services of the main thread, in the order they start, reload and close
 * (struct daemon_service in daemon.h). A new one is a line here; main.c and reload.c only loop.
 */
#include <stddef.h>

#include "control.h"
#include "daemon.h"
#include "metrics.h"

const struct daemon_service *const daemon_services[] = {&control_service, &metrics_service, NULL};
