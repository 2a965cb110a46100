/*
 * timeline.c — records a run and draws it as SVG (timeline.h).
 *
 * Layout, top to bottom: title, failure line, legend; a time axis; one lane per node (its state
 * as coloured segments — down, follower, candidate, leader, paused, crash point armed — with the
 * term written on leader and candidate segments wide enough to hold it, a thin strip under it
 * that turns orange when some of its links are cut and red when it cannot reach a majority, and
 * red triangles for storage failures and failed starts); a lane for the periods with disk faults
 * on; one thin lane per client with its operations as bars from invocation to answer. A failed
 * run gets a red vertical line at the failure and a thick outline on the operations its check
 * names. Every element carries a <title>, so a browser shows details on hover.
 *
 * Memory: arrays that double; everything recorded is kept until tl_destroy.
 */
#include "timeline.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"

#define TL_WIDTH       1600.0
#define TL_LEFT        110.0
#define TL_RIGHT       30.0
#define TL_NODE_LANE   30.0
#define TL_CLIENT_LANE 11.0
#define TL_TEXT_BYTES  200

struct tl_change {
    uint64_t t;
    uint64_t term;
    uint32_t reach;
    uint8_t state;
};

struct tl_node_track {
    struct tl_change *v;
    size_t n, cap;
};

struct tl_markev {
    uint64_t t;
    uint32_t node;
    char what[TL_TEXT_BYTES];
};

struct tl_opev {
    uint64_t t0, t1;
    uint32_t client;
    uint32_t key;
    char op[4];
    uint8_t outcome;
};

struct tl_hl {
    uint32_t client;
    uint64_t t0;
    uint32_t key;
};

struct tl_disk {
    uint64_t t;
    bool on;
};

struct timeline {
    uint32_t nodes, clients;
    struct tl_node_track *track; /* 1-based */
    struct tl_markev *marks;
    size_t n_marks, cap_marks;
    struct tl_opev *ops;
    size_t n_ops, cap_ops;
    struct tl_hl *hls;
    size_t n_hls, cap_hls;
    struct tl_disk *disk;
    size_t n_disk, cap_disk;
    uint64_t settle_at, end_at;
    bool failed;
    uint64_t fail_at;
    char fail_what[TL_TEXT_BYTES];
};

/* Makes room for one more element in *v (n used of *cap, each size bytes). */
static bool tl_grow(void **v, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return true;
    size_t c = *cap ? *cap * 2 : 64;
    void *p = realloc(*v, c * size);
    if (p == NULL)
        return false;
    *v = p;
    *cap = c;
    return true;
}

struct timeline *tl_create(uint32_t nodes, uint32_t clients)
{
    struct timeline *tl = calloc(1, sizeof(*tl));
    if (tl == NULL)
        return NULL;
    tl->nodes = nodes;
    tl->clients = clients;
    tl->track = calloc(nodes + 1, sizeof(*tl->track));
    if (tl->track == NULL) {
        free(tl);
        return NULL;
    }
    return tl;
}

void tl_destroy(struct timeline *tl)
{
    if (tl == NULL)
        return;
    for (uint32_t i = 0; i <= tl->nodes; i++)
        free(tl->track[i].v);
    free(tl->track);
    free(tl->marks);
    free(tl->ops);
    free(tl->hls);
    free(tl->disk);
    free(tl);
}

void tl_node(struct timeline *tl, uint64_t t, uint32_t node, uint8_t state, uint64_t term,
             uint32_t reach)
{
    RK_ASSERT(node >= 1 && node <= tl->nodes);
    struct tl_node_track *k = &tl->track[node];
    if (k->n > 0) {
        struct tl_change *last = &k->v[k->n - 1];
        if (last->state == state && last->term == term && last->reach == reach)
            return;
        if (last->t == t) { /* several changes at one instant: the last one counts */
            *last = (struct tl_change){.t = t, .term = term, .reach = reach, .state = state};
            return;
        }
    }
    if (!tl_grow((void **)&k->v, k->n, &k->cap, sizeof(*k->v)))
        return;
    k->v[k->n++] = (struct tl_change){.t = t, .term = term, .reach = reach, .state = state};
}

void tl_mark(struct timeline *tl, uint64_t t, uint32_t node, const char *what)
{
    if (!tl_grow((void **)&tl->marks, tl->n_marks, &tl->cap_marks, sizeof(*tl->marks)))
        return;
    struct tl_markev *m = &tl->marks[tl->n_marks++];
    m->t = t;
    m->node = node;
    snprintf(m->what, sizeof(m->what), "%s", what);
}

void tl_disk_faults(struct timeline *tl, uint64_t t, bool on)
{
    if (tl->n_disk > 0 && tl->disk[tl->n_disk - 1].on == on)
        return;
    if (!tl_grow((void **)&tl->disk, tl->n_disk, &tl->cap_disk, sizeof(*tl->disk)))
        return;
    tl->disk[tl->n_disk++] = (struct tl_disk){.t = t, .on = on};
}

void tl_op(struct timeline *tl, uint32_t client, uint64_t t0, uint64_t t1, const char *op,
           uint32_t key, uint8_t outcome)
{
    if (!tl_grow((void **)&tl->ops, tl->n_ops, &tl->cap_ops, sizeof(*tl->ops)))
        return;
    struct tl_opev *o = &tl->ops[tl->n_ops++];
    memset(o, 0, sizeof(*o));
    o->t0 = t0;
    o->t1 = t1;
    o->client = client;
    o->key = key;
    snprintf(o->op, sizeof(o->op), "%s", op);
    o->outcome = outcome;
}

void tl_highlight(struct timeline *tl, uint32_t client, uint64_t t0, uint32_t key)
{
    if (!tl_grow((void **)&tl->hls, tl->n_hls, &tl->cap_hls, sizeof(*tl->hls)))
        return;
    tl->hls[tl->n_hls++] = (struct tl_hl){.client = client, .t0 = t0, .key = key};
}

void tl_phases(struct timeline *tl, uint64_t settle_at, uint64_t end_at)
{
    tl->settle_at = settle_at;
    tl->end_at = end_at;
}

void tl_failure(struct timeline *tl, uint64_t t, const char *what)
{
    tl->failed = true;
    tl->fail_at = t;
    snprintf(tl->fail_what, sizeof(tl->fail_what), "%s", what);
}

/* ---- drawing ----------------------------------------------------------------------------- */

struct tl_draw {
    FILE *f;
    uint64_t until;
    double scale; /* pixels per microsecond */
};

static double tl_x(const struct tl_draw *d, uint64_t t)
{
    if (t > d->until)
        t = d->until;
    return TL_LEFT + (double)t * d->scale;
}

/* Text with XML's five special characters escaped and anything not printable ASCII dropped. */
static void tl_text(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '<')
            fputs("&lt;", f);
        else if (c == '>')
            fputs("&gt;", f);
        else if (c == '&')
            fputs("&amp;", f);
        else if (c == '"')
            fputs("&quot;", f);
        else if (c == '\'')
            fputs("&apos;", f);
        else if (c >= 0x20 && c < 0x7f)
            fputc(c, f);
    }
}

static void tl_time(char *buf, size_t cap, uint64_t t)
{
    snprintf(buf, cap, "%" PRIu64 ".%03" PRIu64 "s", t / 1000000, t / 1000 % 1000);
}

static const char *tl_state_fill(uint8_t state)
{
    static const char *const fill[] = {
        [TL_DOWN] = "#3b3b3b",          [TL_FOLLOWER] = "#d6eaf8", [TL_CANDIDATE] = "#f7dc6f",
        [TL_LEADER] = "#1e8449",        [TL_PAUSED] = "#a6acaf",   [TL_DYING] = "#8e44ad",
        [TL_PRE_CANDIDATE] = "#fcf3cf",
    };
    return state <= TL_PRE_CANDIDATE ? fill[state] : "#ffffff";
}

static const char *tl_state_name(uint8_t state)
{
    static const char *const name[] = {
        [TL_DOWN] = "down",
        [TL_FOLLOWER] = "follower",
        [TL_CANDIDATE] = "candidate",
        [TL_LEADER] = "leader",
        [TL_PAUSED] = "paused",
        [TL_DYING] = "crash point armed",
        [TL_PRE_CANDIDATE] = "pre-candidate",
    };
    return state <= TL_PRE_CANDIDATE ? name[state] : "?";
}

static void tl_axis(const struct tl_draw *d, double y_top, double y_bottom)
{
    static const uint64_t steps_us[] = {100000,  200000,   500000,   1000000,  2000000,
                                        5000000, 10000000, 20000000, 60000000, 300000000};
    uint64_t step = steps_us[sizeof(steps_us) / sizeof(steps_us[0]) - 1];
    for (size_t i = 0; i < sizeof(steps_us) / sizeof(steps_us[0]); i++) {
        if ((double)steps_us[i] * d->scale >= 60.0) {
            step = steps_us[i];
            break;
        }
    }
    for (uint64_t t = 0; t <= d->until && t / step < 10000; t += step) {
        double x = tl_x(d, t);
        char label[32];
        tl_time(label, sizeof(label), t);
        fprintf(d->f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\" "
                "fill=\"#555\">%s</text>\n",
                x, y_top, x, y_bottom, x, y_top - 4, label);
    }
}

static void tl_draw_node(const struct timeline *tl, const struct tl_draw *d, uint32_t node,
                         double y)
{
    const struct tl_node_track *k = &tl->track[node];
    FILE *f = d->f;
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" font-weight=\"bold\">n%u</text>\n",
            10.0, y + 14, node);
    uint32_t majority = tl->nodes / 2 + 1;
    for (size_t i = 0; i < k->n; i++) {
        const struct tl_change *c = &k->v[i];
        uint64_t t1 = i + 1 < k->n ? k->v[i + 1].t : d->until;
        if (c->t >= d->until)
            break;
        double x0 = tl_x(d, c->t), x1 = tl_x(d, t1);
        double w = x1 - x0 < 0.5 ? 0.5 : x1 - x0;
        char a[32], b[32];
        tl_time(a, sizeof(a), c->t);
        tl_time(b, sizeof(b), t1);
        fprintf(f,
                "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"18\" fill=\"%s\">"
                "<title>n%u %s term %" PRIu64 ", reaches %u of %u, %s..%s</title></rect>\n",
                x0, y, w, tl_state_fill(c->state), node, tl_state_name(c->state), c->term, c->reach,
                tl->nodes, a, b);
        bool new_term = i == 0 || k->v[i - 1].term != c->term || k->v[i - 1].state != c->state;
        if ((c->state == TL_LEADER || c->state == TL_CANDIDATE) && w >= 22 && new_term)
            fprintf(
                f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"%s\">t%" PRIu64 "</text>\n",
                x0 + 2, y + 13, c->state == TL_LEADER ? "#fff" : "#333", c->term);
        if (c->state != TL_DOWN && c->reach < tl->nodes)
            fprintf(f,
                    "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"5\" fill=\"%s\">"
                    "<title>n%u reaches %u of %u nodes</title></rect>\n",
                    x0, y + 19, w, c->reach < majority ? "#c0392b" : "#e67e22", node, c->reach,
                    tl->nodes);
    }
    for (size_t i = 0; i < tl->n_marks; i++) {
        const struct tl_markev *m = &tl->marks[i];
        if (m->node != node || m->t > d->until)
            continue;
        double x = tl_x(d, m->t);
        char a[32];
        tl_time(a, sizeof(a), m->t);
        fprintf(f,
                "<path d=\"M%.1f %.1f l-5 -8 h10 z\" fill=\"#e74c3c\" stroke=\"#7b241c\">"
                "<title>n%u at %s: ",
                x, y + 2, node, a);
        tl_text(f, m->what);
        fputs("</title></path>\n", f);
    }
}

static bool tl_is_highlighted(const struct timeline *tl, const struct tl_opev *o)
{
    for (size_t i = 0; i < tl->n_hls; i++) {
        const struct tl_hl *h = &tl->hls[i];
        if (h->client == 0 ? h->key == o->key : (h->client == o->client && h->t0 == o->t0))
            return true;
    }
    return false;
}

static void tl_draw_op(const struct timeline *tl, const struct tl_draw *d, const struct tl_opev *o,
                       double y_clients, bool highlighted)
{
    static const char *const outcome_name[] = {"ok", "failed", "unknown", "pending"};
    const char *fill = o->outcome == TL_FAIL      ? "#e74c3c"
                       : o->outcome == TL_UNKNOWN ? "#f39c12"
                       : o->outcome == TL_PENDING ? "#7f8c8d"
                       : o->op[0] == 'g'          ? "#5dade2"
                       : o->op[0] == 'p'          ? "#58d68d"
                                                  : "#bb8fce";
    double y = y_clients + (o->client - 1) * TL_CLIENT_LANE;
    double x0 = tl_x(d, o->t0), x1 = tl_x(d, o->t1);
    double w = x1 - x0 < 1 ? 1 : x1 - x0;
    char a[32], b[32];
    tl_time(a, sizeof(a), o->t0);
    tl_time(b, sizeof(b), o->t1);
    fprintf(d->f,
            "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" fill=\"%s\"%s>"
            "<title>c%u %s k%u %s..%s %s%s</title></rect>\n",
            x0, y + (highlighted ? 0 : 1), w, highlighted ? TL_CLIENT_LANE : TL_CLIENT_LANE - 2,
            fill, highlighted ? " stroke=\"#000\" stroke-width=\"2\"" : "", o->client, o->op,
            o->key, a, b, o->outcome <= TL_PENDING ? outcome_name[o->outcome] : "?",
            highlighted ? " (named by the failed check)" : "");
    (void)tl;
}

static void tl_legend(FILE *f, double y)
{
    static const struct {
        const char *fill, *label;
    } items[] = {
        {"#1e8449", "leader"},      {"#f7dc6f", "candidate"}, {"#fcf3cf", "pre-candidate"},
        {"#d6eaf8", "follower"},    {"#a6acaf", "paused"},    {"#3b3b3b", "down"},
        {"#8e44ad", "crash point"}, {"#e67e22", "links cut"}, {"#c0392b", "no majority"},
        {"#a04000", "disk faults"}, {"#5dade2", "get"},       {"#58d68d", "put"},
        {"#bb8fce", "del"},         {"#e74c3c", "failed"},    {"#f39c12", "unknown"},
        {"#7f8c8d", "pending"},
    };
    double x = TL_LEFT;
    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
        fprintf(f,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"10\" fill=\"%s\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">%s</text>\n",
                x, y - 9, items[i].fill, x + 15, y, items[i].label);
        x += 22 + 6.5 * (double)strlen(items[i].label);
    }
}

static void tl_vline(const struct tl_draw *d, uint64_t t, double y0, double y1, const char *color,
                     const char *dash, const char *label)
{
    double x = tl_x(d, t);
    fprintf(d->f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
            "stroke-width=\"1.5\"%s%s%s/>"
            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"%s\"%s>",
            x, y0, x, y1, color, dash[0] ? " stroke-dasharray=\"" : "", dash, dash[0] ? "\"" : "",
            x > TL_WIDTH - 80 ? x - 3 : x + 3, y1 - 2, color,
            x > TL_WIDTH - 80 ? " text-anchor=\"end\"" : "");
    tl_text(d->f, label);
    fputs("</text>\n", d->f);
}

int tl_write_svg(const struct timeline *tl, FILE *f, uint64_t until, const char *title)
{
    struct tl_draw d = {.f = f, .until = until > 0 ? until : 1};
    d.scale = (TL_WIDTH - TL_LEFT - TL_RIGHT) / (double)d.until;
    double y_axis = 88;
    double y_nodes = y_axis + 8;
    double y_disk = y_nodes + tl->nodes * TL_NODE_LANE + 4;
    double y_clients = y_disk + 26;
    double height = y_clients + tl->clients * TL_CLIENT_LANE + 24;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n"
            "<text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">",
            TL_WIDTH, height, TL_WIDTH, height);
    tl_text(f, title);
    fputs("</text>\n", f);
    if (tl->failed) {
        fputs("<text x=\"10\" y=\"40\" font-size=\"12\" fill=\"#c0392b\">FAIL: ", f);
        tl_text(f, tl->fail_what);
        fputs("</text>\n", f);
    }
    tl_legend(f, 62);
    tl_axis(&d, y_axis, height - 20);
    for (uint32_t i = 1; i <= tl->nodes; i++)
        tl_draw_node(tl, &d, i, y_nodes + (i - 1) * TL_NODE_LANE);
    fprintf(f, "<text x=\"10\" y=\"%.1f\" font-size=\"11\">disk faults</text>\n", y_disk + 11);
    for (size_t i = 0; i < tl->n_disk; i++) {
        if (!tl->disk[i].on)
            continue;
        uint64_t t1 = i + 1 < tl->n_disk ? tl->disk[i + 1].t : until;
        fprintf(f,
                "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"10\" fill=\"#a04000\">"
                "<title>disk faults on</title></rect>\n",
                tl_x(&d, tl->disk[i].t), y_disk + 2, tl_x(&d, t1) - tl_x(&d, tl->disk[i].t));
    }
    for (uint32_t c = 1; c <= tl->clients; c++)
        fprintf(f, "<text x=\"10\" y=\"%.1f\" font-size=\"8\">c%u</text>\n",
                y_clients + c * TL_CLIENT_LANE - 1, c);
    /* Highlighted operations last, so that they are drawn on top. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < tl->n_ops; i++) {
            const struct tl_opev *o = &tl->ops[i];
            if (o->t0 > until || o->client < 1 || o->client > tl->clients)
                continue;
            bool hl = tl_is_highlighted(tl, o);
            if (hl == (pass == 1))
                tl_draw_op(tl, &d, o, y_clients, hl);
        }
    }
    if (tl->settle_at > 0 && tl->settle_at <= until)
        tl_vline(&d, tl->settle_at, y_nodes - 4, height - 8, "#2874a6", "5,3", "settle");
    if (tl->end_at > 0 && tl->end_at <= until)
        tl_vline(&d, tl->end_at, y_nodes - 4, height - 8, "#555", "2,3", "end");
    if (tl->failed)
        tl_vline(&d, tl->fail_at, y_nodes - 4, height - 8, "#c0392b", "", "failure");
    fputs("</svg>\n", f);
    return ferror(f) ? -1 : 0;
}
