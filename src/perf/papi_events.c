/* SPDX-License-Identifier: BSD-3-Clause */
/* [monitor] papi_events: names checked against what PAPI knows (unknown
 * names and components are configuration errors, with the close names),
 * then split into the events this machine can count and those it cannot
 * (no PMU in a VM, kernel.perf_event_paranoid, a disabled component), said
 * in one line. */
#ifdef TSR_HAVE_PAPI
#include "common/text.h"
#include "perf/internal.h"
#include "tessera/error.h"

#include <ctype.h>
#include <papi.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_rc;

static void init_once(void)
{
    int v = PAPI_library_init(PAPI_VER_CURRENT);
    init_rc = v == PAPI_VER_CURRENT ? TSR_OK : v;
}

int perf_papi_init(void)
{
    pthread_once(&once, init_once);
    if (init_rc)
        return tsr_error_set(TSR_ENOTSUP, "PAPI_library_init failed: %s", PAPI_strerror(init_rc));
    return TSR_OK;
}

#define SDE_PREFIX "sde:::tessera::"

static int own_counter(const char *name)
{
    for (int k = 0; k < TSR_COUNTER_COUNT; k++)
        if (strcmp(name, tsr_counter_name((tsr_counter_t)k)) == 0)
            return 1;
    return 0;
}

/* The closest names to want, best first. */
enum { KEEP = 3 };
typedef struct close {
    char best[KEEP][PAPI_MAX_STR_LEN];
    int d[KEEP], n, limit;
    const char *want;
} close_t;

static void consider(close_t *c, const char *name)
{
    int d = tsr_text_distance(c->want, name);
    if (d == 0) /* itself (e.g. a placeholder PAPI made when asked) */
        return;
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->best[i], name) == 0)
            return;
    if (d > c->limit || (c->n == KEEP && d >= c->d[KEEP - 1]))
        return;
    int at = c->n < KEEP ? c->n++ : KEEP - 1;
    for (; at > 0 && c->d[at - 1] > d; at--) {
        c->d[at] = c->d[at - 1];
        memcpy(c->best[at], c->best[at - 1], sizeof c->best[at]);
    }
    c->d[at] = d;
    snprintf(c->best[at], sizeof c->best[at], "%s", name);
}

/* Among PAPI's presets, the native events of its enabled components and
 * tessera's own (which PAPI lists only once a tool asked for them);
 * appended to out as " (close: A, B, C)". */
static void suggest(const char *want, char *out, size_t len)
{
    close_t c = {.want = want, .limit = (int)strlen(want) / 3 + 2};
    char name[PAPI_MAX_STR_LEN];
    int ncmp = PAPI_num_components();
    for (int k = -1; k < ncmp; k++) {
        const PAPI_component_info_t *ci = k >= 0 ? PAPI_get_component_info(k) : NULL;
        if (k >= 0 && (!ci || ci->disabled))
            continue;
        int code = k < 0 ? PAPI_PRESET_MASK : PAPI_NATIVE_MASK;
        int more = k < 0 ? PAPI_enum_event(&code, PAPI_ENUM_FIRST) : PAPI_enum_cmp_event(&code, PAPI_ENUM_FIRST, k);
        for (; more == PAPI_OK;
             more = k < 0 ? PAPI_enum_event(&code, PAPI_ENUM_EVENTS) : PAPI_enum_cmp_event(&code, PAPI_ENUM_EVENTS, k))
            if (PAPI_event_code_to_name(code, name) == PAPI_OK)
                consider(&c, name);
    }
    for (int k = 0; k < TSR_COUNTER_COUNT; k++) {
        snprintf(name, sizeof name, SDE_PREFIX "%s", tsr_counter_name((tsr_counter_t)k));
        consider(&c, name);
    }
    for (int i = 0; i < c.n; i++)
        perf_append(out, len, "%s%s", i ? ", " : " (close: ", c.best[i]);
    perf_append(out, len, "%s", c.n ? ")" : " (no close name; papi_avail and papi_native_avail list them)");
}

static void list_components(char *out, size_t len)
{
    int n = PAPI_num_components();
    for (int c = 0; c < n; c++) {
        const PAPI_component_info_t *ci = PAPI_get_component_info(c);
        if (ci)
            perf_append(out, len, "%s%s", c ? ", " : "", ci->name);
    }
}

/* Why this machine counts no CPU events: the perf_event component's reason
 * and the kernel's paranoia level. */
static void why_no_cpu(char *out, size_t len)
{
    int c = PAPI_get_component_index("perf_event");
    const PAPI_component_info_t *ci = c >= 0 ? PAPI_get_component_info(c) : NULL;
    if (!ci) {
        perf_append(out, len, "this PAPI has no perf_event component");
        return;
    }
    perf_append(out, len, "PAPI component perf_event is disabled: %s", ci->disabled_reason);
    FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "r");
    int level;
    if (f && fscanf(f, "%d", &level) == 1)
        perf_append(out, len, "; kernel.perf_event_paranoid = %d", level);
    if (f)
        fclose(f);
}

static int cpu_counters_usable(void)
{
    int c = PAPI_get_component_index("perf_event");
    const PAPI_component_info_t *ci = c >= 0 ? PAPI_get_component_info(c) : NULL;
    return ci && !ci->disabled;
}

/* One name: 1 countable (code set), 0 not on this machine (why appended),
 * TSR_EINVAL unknown (bad appended). */
static int check_one(const char *name, int *code, char *why, size_t wlen, char *bad, size_t blen)
{
    const char *sep = strstr(name, ":::");
    /* PAPI takes any sde name (a library may register it later): tessera's are known. */
    if (strncmp(name, SDE_PREFIX, strlen(SDE_PREFIX)) == 0 && !own_counter(name + strlen(SDE_PREFIX))) {
        perf_append(bad, blen, "%sunknown PAPI event %s", *bad ? "; " : "", name);
        suggest(name, bad, blen);
        return TSR_EINVAL;
    }
    if (sep) {
        char comp[PERF_NAME_LEN];
        snprintf(comp, sizeof comp, "%.*s", (int)(sep - name), name);
        int c = PAPI_get_component_index(comp);
        PAPI_event_name_to_code(name, code); /* some components start (and say why not) at first use */
        const PAPI_component_info_t *ci = c >= 0 ? PAPI_get_component_info(c) : NULL;
        if (!ci) {
            perf_append(bad, blen, "%s%s: no PAPI component '%s' (this PAPI has ", *bad ? "; " : "", name, comp);
            list_components(bad, blen);
            perf_append(bad, blen, ")");
            return TSR_EINVAL;
        }
        if (ci->disabled) {
            perf_append(why, wlen, "PAPI component %s is disabled (%s)", comp, ci->disabled_reason);
            return 0;
        }
    }
    if (PAPI_event_name_to_code(name, code) == PAPI_OK) {
        PAPI_event_info_t info;
        if (IS_PRESET(*code) && PAPI_get_event_info(*code, &info) == PAPI_OK && info.count == 0) {
            if (cpu_counters_usable())
                perf_append(why, wlen, "this CPU has no counter for it");
            else
                why_no_cpu(why, wlen);
            return 0;
        }
        return 1;
    }
    /* A native name cannot be checked while its component is off. */
    if (!sep && strncmp(name, "PAPI_", 5) != 0 && !cpu_counters_usable()) {
        why_no_cpu(why, wlen);
        return 0;
    }
    perf_append(bad, blen, "%sunknown PAPI event %s", *bad ? "; " : "", name);
    suggest(name, bad, blen);
    return TSR_EINVAL;
}

/* Merges "X: reason" pieces: names with the same reason share it. */
static void add_reason(char *note, size_t len, char names[][PERF_NAME_LEN], char reasons[][PERF_NOTE_LEN], int n)
{
    for (int i = 0; i < n; i++) {
        if (!names[i][0])
            continue;
        perf_append(note, len, "%s%s", *note ? "; " : "", names[i]);
        for (int j = i + 1; j < n; j++)
            if (names[j][0] && strcmp(reasons[i], reasons[j]) == 0) {
                perf_append(note, len, ", %s", names[j]);
                names[j][0] = 0;
            }
        perf_append(note, len, ": %s", reasons[i]);
    }
}

int perf_resolve(const char *list, perf_events_t *ev, char *note, size_t len)
{
    char bad[PERF_NOTE_LEN] = "", item[PERF_NAME_LEN];
    char off_names[TSR_PERF_MAX_EVENTS][PERF_NAME_LEN], off_why[TSR_PERF_MAX_EVENTS][PERF_NOTE_LEN];
    char seen[TSR_PERF_MAX_EVENTS][PERF_NAME_LEN];
    int noff = 0, nitems = 0;
    ev->n = 0;
    *note = 0;
    for (const char *p = list; p && *p;) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        size_t k = strcspn(p, ",");
        while (k && isspace((unsigned char)p[k - 1]))
            k--;
        if (!k)
            break;
        if (k >= sizeof item)
            return tsr_error_set(TSR_EINVAL, "[monitor] papi_events: the name '%.40s...' is too long", p);
        memcpy(item, p, k);
        item[k] = 0;
        p += strcspn(p, ",");
        if (++nitems > TSR_PERF_MAX_EVENTS)
            return tsr_error_set(TSR_EINVAL, "[monitor] papi_events: more than %d events listed", TSR_PERF_MAX_EVENTS);
        for (int i = 0; i < nitems - 1; i++)
            if (strcmp(seen[i], item) == 0)
                return tsr_error_set(TSR_EINVAL, "[monitor] papi_events: %s is listed twice", item);
        memcpy(seen[nitems - 1], item, sizeof item);
        char why[PERF_NOTE_LEN] = "";
        int code = 0, rc = check_one(item, &code, why, sizeof why, bad, sizeof bad);
        if (rc == 1) {
            snprintf(ev->name[ev->n], sizeof ev->name[0], "%s", item);
            ev->code[ev->n++] = code;
        } else if (rc == 0) {
            snprintf(off_names[noff], sizeof off_names[0], "%s", item);
            snprintf(off_why[noff++], sizeof off_why[0], "%s", why);
        }
    }
    if (*bad)
        return tsr_error_set(TSR_EINVAL, "[monitor] papi_events: %s", bad);
    if (noff) {
        perf_append(note, len, "PAPI events not counted on this machine: ");
        size_t at = strlen(note);
        add_reason(note + at, len - at, off_names, off_why, noff);
    }
    return TSR_OK;
}
#endif
