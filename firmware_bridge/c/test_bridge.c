/*
 * Test program for the C side of the edgeshelf firmware bridge.
 *
 *   cc -std=c99 -Wall -Wextra -Werror -pedantic -I. edgeshelf_bridge.c test_bridge.c -o test_bridge
 *
 *   ./test_bridge vectors ../test_vectors.json   check every shared test vector, both directions
 *   ./test_bridge decode  < stream.bin            stream-decode stdin: "F type seq flags hex" per
 *                                                 frame, "E reason" per rejected segment, then
 *                                                 "S frames oversize cobs short crc version length"
 *   ./test_bridge encode  < lines                 "type flags seq payloadhex" -> wire hex per line
 *   ./test_bridge cobs    < lines                 "E hex" -> COBS hex, "D hex" -> decoded hex or ERR
 *
 * (Only this test program allocates memory; the library does not.)
 */
#include "edgeshelf_bridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a minimal JSON reader (objects, arrays, strings without escapes but \" \\, numbers, literals) */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jnode {
    enum jtype type;
    double num;
    char *str;            /* J_STR value; key when inside an object */
    char *key;
    struct jnode **items; /* J_ARR / J_OBJ children */
    size_t count;
} jnode;

static const char *jp;

static void jfail(const char *what) {
    fprintf(stderr, "test_bridge: JSON parse error (%s) near: %.40s\n", what, jp);
    exit(2);
}

static void jskip(void) {
    while (*jp == ' ' || *jp == '\n' || *jp == '\r' || *jp == '\t') jp++;
}

static char *jstring(void) {
    const char *start;
    char *out, *o;
    if (*jp != '"') jfail("expected string");
    start = ++jp;
    while (*jp && *jp != '"') {
        if (*jp == '\\') jp++;
        if (*jp) jp++;
    }
    if (*jp != '"') jfail("unterminated string");
    out = o = malloc((size_t)(jp - start) + 1u);
    if (!out) jfail("out of memory");
    while (start < jp) {
        if (*start == '\\') start++;
        *o++ = *start++;
    }
    *o = 0;
    jp++;
    return out;
}

static jnode *jvalue(void);

static jnode *jnew(enum jtype t) {
    jnode *n = calloc(1, sizeof *n);
    if (!n) jfail("out of memory");
    n->type = t;
    return n;
}

static void jpush(jnode *parent, jnode *child) {
    parent->items = realloc(parent->items, (parent->count + 1u) * sizeof *parent->items);
    if (!parent->items) jfail("out of memory");
    parent->items[parent->count++] = child;
}

static jnode *jvalue(void) {
    jnode *n;
    jskip();
    if (*jp == '{') {
        n = jnew(J_OBJ);
        jp++;
        jskip();
        if (*jp == '}') { jp++; return n; }
        for (;;) {
            char *key;
            jnode *child;
            jskip();
            key = jstring();
            jskip();
            if (*jp++ != ':') jfail("expected ':'");
            child = jvalue();
            child->key = key;
            jpush(n, child);
            jskip();
            if (*jp == ',') { jp++; continue; }
            if (*jp == '}') { jp++; return n; }
            jfail("expected ',' or '}'");
        }
    }
    if (*jp == '[') {
        n = jnew(J_ARR);
        jp++;
        jskip();
        if (*jp == ']') { jp++; return n; }
        for (;;) {
            jpush(n, jvalue());
            jskip();
            if (*jp == ',') { jp++; continue; }
            if (*jp == ']') { jp++; return n; }
            jfail("expected ',' or ']'");
        }
    }
    if (*jp == '"') {
        n = jnew(J_STR);
        n->str = jstring();
        return n;
    }
    if (!strncmp(jp, "true", 4)) { jp += 4; n = jnew(J_BOOL); n->num = 1; return n; }
    if (!strncmp(jp, "false", 5)) { jp += 5; return jnew(J_BOOL); }
    if (!strncmp(jp, "null", 4)) { jp += 4; return jnew(J_NULL); }
    {
        char *end;
        n = jnew(J_NUM);
        n->num = strtod(jp, &end);
        if (end == jp) jfail("unexpected character");
        jp = end;
        return n;
    }
}

static void jfree(jnode *n) {
    size_t i;
    for (i = 0; i < n->count; i++) jfree(n->items[i]);
    free(n->items);
    free(n->str);
    free(n->key);
    free(n);
}

static jnode *jget(const jnode *obj, const char *key) {
    size_t i;
    for (i = 0; obj && obj->type == J_OBJ && i < obj->count; i++)
        if (!strcmp(obj->items[i]->key, key)) return obj->items[i];
    fprintf(stderr, "test_bridge: missing JSON key '%s'\n", key);
    exit(2);
}

static double jnum(const jnode *obj, const char *key) { return jget(obj, key)->num; }
static const char *jstr(const jnode *obj, const char *key) { return jget(obj, key)->str; }

/* ---- helpers -------------------------------------------------------------------------- */

static int failures = 0;
static int checks = 0;

#define CHECK(cond, name, what)                                                         \
    do {                                                                                \
        checks++;                                                                       \
        if (!(cond)) {                                                                  \
            failures++;                                                                 \
            fprintf(stderr, "FAIL %s: %s (%s:%d)\n", (name), (what), __FILE__, __LINE__); \
        }                                                                               \
    } while (0)

static size_t unhex(const char *hex, uint8_t *out, size_t cap) {
    size_t n = strlen(hex) / 2u, i;
    if (n > cap) {
        fprintf(stderr, "test_bridge: hex string of %zu bytes > buffer %zu\n", n, cap);
        exit(2);
    }
    for (i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2u * i, "%2x", &v) != 1) {
            fprintf(stderr, "test_bridge: bad hex\n");
            exit(2);
        }
        out[i] = (uint8_t)v;
    }
    return n;
}

static void print_hex(const uint8_t *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) printf("%02x", p[i]);
}

static int str_eq(esb_str_t s, const char *expected) {
    return strlen(expected) == s.len && memcmp(s.ptr, expected, s.len) == 0;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    long size;
    char *text;
    if (!f) {
        fprintf(stderr, "test_bridge: cannot open %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc((size_t)size + 1u);
    if (!text || fread(text, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "test_bridge: cannot read %s\n", path);
        exit(2);
    }
    text[size] = 0;
    fclose(f);
    return text;
}

static uint8_t buf_a[1 << 16], buf_b[1 << 16], buf_c[1 << 16];

/* decode a whole wire string; returns frames found (first in *first) */
static int decode_all(const uint8_t *wire, size_t n, esb_frame_t *first, uint8_t *payload_copy, int *last_error) {
    static esb_decoder_t d;
    esb_frame_t f;
    size_t i;
    int found = 0;
    esb_decoder_init(&d);
    *last_error = 0;
    for (i = 0; i < n; i++) {
        int rc = esb_decoder_push(&d, wire[i], &f);
        if (rc == 1) {
            if (found == 0) {
                *first = f;
                memcpy(payload_copy, f.payload, f.length);
                first->payload = payload_copy;
            }
            found++;
        } else if (rc < 0) {
            *last_error = rc;
        }
    }
    return found;
}

/* ---- vector checks ------------------------------------------------------------------------ */

static void check_frame_vector(const jnode *v, const char *name) {
    size_t payload_len = unhex(jstr(v, "payload"), buf_a, sizeof buf_a);
    size_t wire_len = unhex(jstr(v, "wire"), buf_b, sizeof buf_b);
    size_t out_len = 0;
    esb_frame_t f;
    int err, rc;
    rc = esb_frame_encode((uint8_t)jnum(v, "type"), (uint8_t)jnum(v, "flags"), (uint16_t)jnum(v, "seq"), buf_a,
                          (uint16_t)payload_len, buf_c, sizeof buf_c, &out_len);
    CHECK(rc == ESB_OK, name, "esb_frame_encode failed");
    CHECK(out_len == wire_len && memcmp(buf_c, buf_b, wire_len) == 0, name, "C encoding != Python wire bytes");
    CHECK(out_len <= ESB_WIRE_SIZE(payload_len), name, "wire longer than ESB_WIRE_SIZE");
    rc = decode_all(buf_b, wire_len, &f, buf_c, &err);
    CHECK(rc == 1, name, "C decoder did not deliver exactly one frame from Python's wire bytes");
    if (rc == 1) {
        CHECK(f.type == (uint8_t)jnum(v, "type") && f.seq == (uint16_t)jnum(v, "seq") &&
                  f.flags == (uint8_t)jnum(v, "flags") && f.length == payload_len &&
                  memcmp(f.payload, buf_a, payload_len) == 0,
              name, "decoded fields differ");
    }
}

static int frame_from_vector(const jnode *v, esb_frame_t *f, uint8_t *payload_buf) {
    f->version = ESB_PROTOCOL_VERSION;
    f->type = (uint8_t)jnum(v, "type");
    f->flags = (uint8_t)jnum(v, "flags");
    f->seq = (uint16_t)jnum(v, "seq");
    f->length = (uint16_t)unhex(jstr(v, "payload"), payload_buf, 4096);
    f->payload = payload_buf;
    return f->length;
}

/* C -> Python: build the payload with the C builder and compare with Python's bytes */
static void check_built(const char *name, int n, const uint8_t *expected, size_t expected_len) {
    CHECK(n >= 0, name, "builder failed");
    CHECK(n >= 0 && (size_t)n == expected_len && memcmp(buf_c, expected, expected_len) == 0, name,
          "C payload != Python payload");
}

static void check_message_vector(const jnode *v) {
    const char *name = jstr(v, "name");
    const char *kind = jstr(v, "message");
    const jnode *fl = jget(v, "fields");
    esb_frame_t f;
    static uint8_t payload[4096];
    size_t cap = sizeof buf_c;
    int n, rc;
    check_frame_vector(v, name);
    frame_from_vector(v, &f, payload);

    if (!strcmp(kind, "hello")) {
        esb_hello_t h;
        const jnode *ver = jget(fl, "firmware_version");
        h.protocol = (uint8_t)jnum(fl, "protocol");
        h.fw_major = (uint8_t)ver->items[0]->num;
        h.fw_minor = (uint8_t)ver->items[1]->num;
        h.fw_patch = (uint8_t)ver->items[2]->num;
        h.sample_rate = (uint32_t)jnum(fl, "sample_rate");
        h.channels = (uint8_t)jnum(fl, "channels");
        h.sample_format = (uint8_t)jnum(fl, "sample_format");
        h.image_formats = (uint8_t)jnum(fl, "image_formats");
        h.capabilities = (uint16_t)jnum(fl, "capabilities");
        h.max_payload = (uint16_t)jnum(fl, "max_payload");
        h.chunk_samples = (uint16_t)jnum(fl, "chunk_samples");
        h.name = jstr(fl, "name");
        check_built(name, esb_build_hello(buf_c, cap, &h), f.payload, f.length);
    } else if (!strcmp(kind, "wake")) {
        n = esb_build_wake(buf_c, cap, (uint16_t)jnum(fl, "query"), (float)jnum(fl, "confidence"),
                           (uint32_t)jnum(fl, "timestamp_ms"), jstr(fl, "word"));
        check_built(name, n, f.payload, f.length);
    } else if (!strcmp(kind, "button")) {
        n = esb_build_button(buf_c, cap, (uint8_t)jnum(fl, "button"), (uint8_t)jnum(fl, "action"),
                             (uint32_t)jnum(fl, "timestamp_ms"));
        check_built(name, n, f.payload, f.length);
    } else if (!strcmp(kind, "audio")) {
        static int16_t samples[512];
        const jnode *s = jget(fl, "samples");
        size_t i;
        for (i = 0; i < s->count && i < 512; i++) samples[i] = (int16_t)s->items[i]->num;
        n = esb_build_audio(buf_c, cap, (uint16_t)jnum(fl, "query"), (uint32_t)jnum(fl, "index"),
                            (uint32_t)jnum(fl, "sample_offset"), samples, s->count);
        check_built(name, n, f.payload, f.length);
    } else if (!strcmp(kind, "end_of_utterance")) {
        n = esb_build_end_of_utterance(buf_c, cap, (uint16_t)jnum(fl, "query"), (uint32_t)jnum(fl, "samples"),
                                       (uint32_t)jnum(fl, "dropped"), (uint8_t)jnum(fl, "reason"));
        check_built(name, n, f.payload, f.length);
    } else if (!strcmp(kind, "image_chunk")) {
        size_t len = unhex(jstr(fl, "data"), buf_a, sizeof buf_a);
        n = esb_build_image_chunk(buf_c, cap, (uint16_t)jnum(fl, "query"), (uint32_t)jnum(fl, "offset"),
                                  (uint32_t)jnum(fl, "total"), (uint8_t)jnum(fl, "format"), buf_a, len);
        check_built(name, n, f.payload, f.length);
    } else if (!strcmp(kind, "status")) {
        esb_status_t s;
        s.uptime_ms = (uint32_t)jnum(fl, "uptime_ms");
        s.audio_captured = (uint32_t)jnum(fl, "audio_captured");
        s.audio_sent = (uint32_t)jnum(fl, "audio_sent");
        s.audio_dropped = (uint32_t)jnum(fl, "audio_dropped");
        s.retransmits = (uint32_t)jnum(fl, "retransmits");
        s.rx_errors = (uint32_t)jnum(fl, "rx_errors");
        s.rx_duplicates = (uint32_t)jnum(fl, "rx_duplicates");
        check_built(name, esb_build_status(buf_c, cap, &s), f.payload, f.length);
    } else if (!strcmp(kind, "ack")) {
        uint16_t seq = 0;
        check_built(name, esb_build_ack(buf_c, cap, (uint16_t)jnum(fl, "seq")), f.payload, f.length);
        rc = esb_parse_ack(&f, &seq);
        CHECK(rc == ESB_OK && seq == (uint16_t)jnum(fl, "seq"), name, "esb_parse_ack");
    } else if (!strcmp(kind, "nack")) {
        uint16_t seq = 0;
        uint8_t reason = 0;
        check_built(name, esb_build_nack(buf_c, cap, (uint16_t)jnum(fl, "seq"), (uint8_t)jnum(fl, "reason")),
                    f.payload, f.length);
        rc = esb_parse_nack(&f, &seq, &reason);
        CHECK(rc == ESB_OK && seq == (uint16_t)jnum(fl, "seq") && reason == (uint8_t)jnum(fl, "reason"), name,
              "esb_parse_nack");
    } else if (!strcmp(kind, "error")) {
        uint16_t code = 0;
        esb_str_t text;
        check_built(name, esb_build_error(buf_c, cap, (uint16_t)jnum(fl, "code"), jstr(fl, "text")), f.payload,
                    f.length);
        rc = esb_parse_error(&f, &code, &text);
        CHECK(rc == ESB_OK && code == (uint16_t)jnum(fl, "code") && str_eq(text, jstr(fl, "text")), name,
              "esb_parse_error");
    } else if (!strcmp(kind, "ping") || !strcmp(kind, "pong")) {
        uint32_t nonce = 0;
        check_built(name, esb_build_ping(buf_c, cap, (uint32_t)jnum(fl, "nonce")), f.payload, f.length);
        rc = esb_parse_ping(&f, &nonce);
        CHECK(rc == ESB_OK && nonce == (uint32_t)jnum(fl, "nonce"), name, "esb_parse_ping");
    } else if (!strcmp(kind, "credit")) {
        uint32_t limit = 0;
        rc = esb_parse_credit(&f, &limit);
        CHECK(rc == ESB_OK && limit == (uint32_t)jnum(fl, "limit"), name, "esb_parse_credit");
    } else if (!strcmp(kind, "led")) {
        esb_led_t led;
        const jnode *rgb = jget(fl, "rgb");
        rc = esb_parse_led(&f, &led);
        CHECK(rc == ESB_OK && led.state == (uint8_t)jnum(fl, "state") && led.r == (uint8_t)rgb->items[0]->num &&
                  led.g == (uint8_t)rgb->items[1]->num && led.b == (uint8_t)rgb->items[2]->num &&
                  led.period_ms == (uint16_t)jnum(fl, "period_ms"),
              name, "esb_parse_led");
    } else if (!strcmp(kind, "display")) {
        uint8_t line = 0;
        esb_str_t text;
        rc = esb_parse_display(&f, &line, &text);
        CHECK(rc == ESB_OK && line == (uint8_t)jnum(fl, "line") && str_eq(text, jstr(fl, "text")), name,
              "esb_parse_display");
    } else if (!strcmp(kind, "shard_status")) {
        esb_shard_status_t s;
        rc = esb_parse_shard_status(&f, &s);
        CHECK(rc == ESB_OK && s.state == (uint8_t)jnum(fl, "state") && s.products == (uint32_t)jnum(fl, "products") &&
                  s.age_s == (uint32_t)jnum(fl, "age_s") && str_eq(s.space_id, jstr(fl, "space_id")),
              name, "esb_parse_shard_status");
    } else if (!strcmp(kind, "result")) {
        esb_result_t r;
        const jnode *hits = jget(fl, "hits");
        size_t i;
        rc = esb_parse_result(&f, &r);
        CHECK(rc == ESB_OK, name, "esb_parse_result failed");
        if (rc == ESB_OK) {
            CHECK(r.query == (uint16_t)jnum(fl, "query") && r.status == (uint8_t)jnum(fl, "status") &&
                      r.count == hits->count && str_eq(r.transcript, jstr(fl, "transcript")) &&
                      str_eq(r.error, jstr(fl, "error")),
                  name, "result header fields");
            for (i = 0; i < hits->count; i++) {
                esb_hit_t hit;
                const jnode *h = hits->items[i];
                rc = esb_result_hit(&r, (uint8_t)i, &hit);
                CHECK(rc == ESB_OK && hit.score == (float)jnum(h, "score") &&
                          str_eq(hit.product_id, jstr(h, "product_id")) && str_eq(hit.title, jstr(h, "title")),
                      name, "result hit");
            }
            CHECK(esb_result_hit(&r, r.count, NULL) == ESB_ERR_BUFFER, name, "hit past the end");
        }
    } else {
        fprintf(stderr, "test_bridge: no C check for message kind '%s'\n", kind);
        failures++;
    }
}

static int reason_index(const char *reason) {
    int s;
    for (s = ESB_ERR_OVERSIZE; s >= ESB_ERR_LENGTH; s--)
        if (!strcmp(esb_strerror(s), reason)) return -s - 1;
    return -1;
}

static int run_vectors(const char *path) {
    char *text = read_file(path);
    jnode *root, *list;
    size_t i;
    jp = text;
    root = jvalue();
    if ((int)jnum(root, "protocol_version") != (int)ESB_PROTOCOL_VERSION ||
        (unsigned)jnum(root, "max_payload") != ESB_MAX_PAYLOAD) {
        fprintf(stderr, "test_bridge: vectors are for another protocol version or ESB_MAX_PAYLOAD\n");
        return 2;
    }

    list = jget(root, "crc32");
    for (i = 0; i < list->count; i++) {
        size_t n = unhex(jstr(list->items[i], "data"), buf_a, sizeof buf_a);
        CHECK(esb_crc32(0, buf_a, n) == (uint32_t)jnum(list->items[i], "crc32"), "crc32", "CRC32 differs from zlib");
    }

    list = jget(root, "cobs");
    for (i = 0; i < list->count; i++) {
        const jnode *v = list->items[i];
        size_t n = unhex(jstr(v, "data"), buf_a, sizeof buf_a);
        size_t m = unhex(jstr(v, "encoded"), buf_b, sizeof buf_b);
        size_t out = esb_cobs_encode(buf_a, n, buf_c, sizeof buf_c), dec_len = 0;
        CHECK(out == m && memcmp(buf_c, buf_b, m) == 0, jstr(v, "name"), "COBS encoding differs from the cobs package");
        CHECK(ESB_COBS_SIZE(n) >= out, jstr(v, "name"), "ESB_COBS_SIZE too small");
        CHECK(esb_cobs_encode(buf_a, n, buf_c, m - 1u) == 0, jstr(v, "name"), "encode into a too-small buffer must fail");
        CHECK(esb_cobs_decode(buf_b, m, buf_c, sizeof buf_c, &dec_len) == ESB_OK && dec_len == n &&
                  memcmp(buf_c, buf_a, n) == 0,
              jstr(v, "name"), "COBS decoding differs");
    }

    list = jget(root, "cobs_invalid");
    for (i = 0; i < list->count; i++) {
        size_t m = unhex(jstr(list->items[i], "encoded"), buf_b, sizeof buf_b), dec_len;
        CHECK(esb_cobs_decode(buf_b, m, buf_c, sizeof buf_c, &dec_len) == ESB_ERR_COBS, jstr(list->items[i], "name"),
              "invalid COBS accepted");
    }

    list = jget(root, "frames");
    for (i = 0; i < list->count; i++) check_frame_vector(list->items[i], jstr(list->items[i], "name"));

    list = jget(root, "rejects");
    for (i = 0; i < list->count; i++) {
        const jnode *v = list->items[i];
        size_t m = unhex(jstr(v, "wire"), buf_b, sizeof buf_b);
        esb_frame_t f;
        int err, found = decode_all(buf_b, m, &f, buf_c, &err);
        CHECK(found == 0, jstr(v, "name"), "a frame that must be rejected was delivered");
        CHECK(err < 0 && !strcmp(esb_strerror(err), jstr(v, "reason")), jstr(v, "name"), "wrong rejection reason");
    }

    list = jget(root, "messages");
    for (i = 0; i < list->count; i++) check_message_vector(list->items[i]);

    list = jget(root, "streams");
    for (i = 0; i < list->count; i++) {
        const jnode *v = list->items[i];
        const jnode *frames = jget(v, "frames");
        const jnode *rejected = jget(v, "rejected");
        size_t m = unhex(jstr(v, "wire"), buf_b, sizeof buf_b), k, got = 0;
        static esb_decoder_t d;
        esb_frame_t f;
        int ok = 1;
        esb_decoder_init(&d);
        for (k = 0; k < m; k++) {
            if (esb_decoder_push(&d, buf_b[k], &f) == 1) {
                if (got < frames->count) {
                    const jnode *e = frames->items[got];
                    size_t pl = unhex(jstr(e, "payload"), buf_a, sizeof buf_a);
                    if (f.type != (uint8_t)jnum(e, "type") || f.seq != (uint16_t)jnum(e, "seq") ||
                        f.flags != (uint8_t)jnum(e, "flags") || f.length != pl || memcmp(f.payload, buf_a, pl))
                        ok = 0;
                }
                got++;
            }
        }
        CHECK(ok && got == frames->count, jstr(v, "name"), "stream: delivered frames differ");
        for (k = 0; k < rejected->count; k++) {
            int idx = reason_index(rejected->items[k]->key);
            CHECK(idx >= 0 && d.rejected[idx] == (uint32_t)rejected->items[k]->num, jstr(v, "name"),
                  "stream: rejection counts differ");
        }
    }

    printf("test_bridge: %d checks, %d failures (%s)\n", checks, failures, path);
    jfree(root);
    free(text);
    return failures ? 1 : 0;
}

/* ---- stdin tools ------------------------------------------------------------------------- */

/* run the parser of the frame's type (and walk a result's hits): under -fsanitize this shows
 * that no payload, however damaged, makes a parser read outside it */
static int exercise_parsers(const esb_frame_t *f) {
    uint16_t u16 = 0;
    uint8_t u8 = 0;
    uint32_t u32 = 0;
    esb_str_t text;
    esb_led_t led;
    esb_shard_status_t shard;
    esb_result_t result;
    esb_hit_t hit;
    int rc, i;
    switch (f->type) {
    case ESB_ACK: return esb_parse_ack(f, &u16);
    case ESB_NACK: return esb_parse_nack(f, &u16, &u8);
    case ESB_CREDIT: return esb_parse_credit(f, &u32);
    case ESB_PING:
    case ESB_PONG: return esb_parse_ping(f, &u32);
    case ESB_ERROR: return esb_parse_error(f, &u16, &text);
    case ESB_LED: return esb_parse_led(f, &led);
    case ESB_DISPLAY: return esb_parse_display(f, &u8, &text);
    case ESB_SHARD_STATUS: return esb_parse_shard_status(f, &shard);
    case ESB_RESULT:
        rc = esb_parse_result(f, &result);
        for (i = 0; rc == ESB_OK && i < result.count; i++) rc = esb_result_hit(&result, (uint8_t)i, &hit);
        return rc;
    default: return esb_parse_ack(f, &u16) == ESB_ERR_TYPE ? ESB_OK : ESB_ERR_TYPE;
    }
}

static int run_decode(void) {
    static esb_decoder_t d;
    esb_frame_t f;
    int c, i;
    esb_decoder_init(&d);
    while ((c = getchar()) != EOF) {
        int rc = esb_decoder_push(&d, (uint8_t)c, &f);
        if (rc == 1) {
            printf("F %u %u %u ", f.type, f.seq, f.flags);
            print_hex(f.payload, f.length);
            printf("\n");
            exercise_parsers(&f);
        } else if (rc < 0) {
            printf("E %s\n", esb_strerror(rc));
        }
    }
    printf("S %lu", (unsigned long)d.frames);
    for (i = 0; i < ESB_NUM_REJECT_REASONS; i++) printf(" %lu", (unsigned long)d.rejected[i]);
    printf("\n");
    return 0;
}

static char line[1 << 17];

static int run_encode(void) {
    while (fgets(line, sizeof line, stdin)) {
        unsigned type, flags, seq;
        char hex[4200] = "";
        size_t n, out = 0;
        int rc;
        if (sscanf(line, "%u %u %u %4199s", &type, &flags, &seq, hex) < 3) continue;
        n = unhex(hex, buf_a, sizeof buf_a);
        rc = esb_frame_encode((uint8_t)type, (uint8_t)flags, (uint16_t)seq, buf_a, (uint16_t)n, buf_c, sizeof buf_c,
                              &out);
        if (rc != ESB_OK) {
            printf("ERR %s\n", esb_strerror(rc));
            continue;
        }
        print_hex(buf_c, out);
        printf("\n");
    }
    return 0;
}

static int run_cobs(void) {
    while (fgets(line, sizeof line, stdin)) {
        char *hex = line + 2;
        size_t n, out = 0;
        hex[strcspn(hex, "\r\n")] = 0;
        n = unhex(hex, buf_a, sizeof buf_a);
        if (line[0] == 'E') {
            out = esb_cobs_encode(buf_a, n, buf_c, sizeof buf_c);
            print_hex(buf_c, out);
            printf("\n");
        } else if (esb_cobs_decode(buf_a, n, buf_c, sizeof buf_c, &out) == ESB_OK) {
            print_hex(buf_c, out);
            printf("\n");
        } else {
            printf("ERR\n");
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "vectors")) return run_vectors(argv[2]);
    if (argc == 2 && !strcmp(argv[1], "decode")) return run_decode();
    if (argc == 2 && !strcmp(argv[1], "encode")) return run_encode();
    if (argc == 2 && !strcmp(argv[1], "cobs")) return run_cobs();
    fprintf(stderr, "usage: %s vectors FILE.json | decode | encode | cobs\n", argv[0]);
    return 2;
}
