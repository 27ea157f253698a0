/* edgeshelf firmware bridge: frame and message codec (C99, allocation-free). See the header. */
#include "edgeshelf_bridge.h"

/* Freestanding: no libc calls (builds with -ffreestanding for bare-metal targets). */

static void copy_bytes(uint8_t *dst, const uint8_t *src, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) dst[i] = src[i];
}

static size_t text_length(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

/* ---- little-endian helpers ---------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

typedef union {
    float f;
    uint32_t u;
} f32_bits_t;

static void putf32(uint8_t *p, float f) {
    f32_bits_t v;
    v.f = f;
    put32(p, v.u);
}

static float getf32(const uint8_t *p) {
    f32_bits_t v;
    v.u = get32(p);
    return v.f;
}

const char *esb_strerror(int status) {
    switch (status) {
    case ESB_OK: return "ok";
    case ESB_ERR_OVERSIZE: return "oversize";
    case ESB_ERR_COBS: return "cobs";
    case ESB_ERR_SHORT: return "short";
    case ESB_ERR_CRC: return "crc";
    case ESB_ERR_VERSION: return "version";
    case ESB_ERR_LENGTH: return "length";
    case ESB_ERR_BUFFER: return "buffer";
    case ESB_ERR_PAYLOAD: return "payload";
    case ESB_ERR_TYPE: return "type";
    default: return "unknown";
    }
}

/* ---- CRC32 (16-entry nibble table: 64 bytes of flash, ~2x slower than a 1 KB table) -- */

static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};

uint32_t esb_crc32(uint32_t crc, const uint8_t *data, size_t len) {
    size_t i;
    crc = ~crc;
    for (i = 0; i < len; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0Fu];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0Fu];
    }
    return ~crc;
}

/* ---- COBS ----------------------------------------------------------------------------- */

/* An incremental encoder, so a frame is stuffed straight from header, payload and CRC. It
 * follows the `cobs` package exactly: a block is closed at a zero byte or after 254 non-zero
 * bytes (code 0xFF); a final empty block is written unless the last block was a full one. */
typedef struct {
    uint8_t *dst;
    size_t cap, pos, code_pos;
    uint8_t code;
    uint8_t after_full;
    uint8_t overflow;
} cobs_enc_t;

static void cobs_begin(cobs_enc_t *e, uint8_t *dst, size_t cap) {
    e->dst = dst;
    e->cap = cap;
    e->code_pos = 0;
    e->pos = 1;
    e->code = 1;
    e->after_full = 0;
    e->overflow = 0;
}

/* writes are bounds-checked where they happen: a reserved code byte that ends up unused
 * (after a full block) must not count as an overflow */
static void cobs_write(cobs_enc_t *e, size_t at, uint8_t byte) {
    if (at < e->cap)
        e->dst[at] = byte;
    else
        e->overflow = 1;
}

static void cobs_close_block(cobs_enc_t *e) {
    cobs_write(e, e->code_pos, e->code);
    e->code_pos = e->pos++;
    e->code = 1;
}

static void cobs_put(cobs_enc_t *e, uint8_t byte) {
    if (byte == 0) {
        cobs_close_block(e);
        e->after_full = 0;
        return;
    }
    cobs_write(e, e->pos++, byte);
    if (++e->code == 0xFFu) {
        cobs_close_block(e);
        e->after_full = 1;
    }
}

static void cobs_put_all(cobs_enc_t *e, const uint8_t *src, size_t len) {
    size_t i;
    for (i = 0; i < len; i++) cobs_put(e, src[i]);
}

/* returns the encoded length, 0 on overflow */
static size_t cobs_end(cobs_enc_t *e) {
    if (e->after_full && e->code == 1)
        e->pos--; /* the block opened after a full one stays empty: not written */
    else
        cobs_write(e, e->code_pos, e->code);
    return e->overflow ? 0 : e->pos;
}

size_t esb_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap) {
    cobs_enc_t e;
    cobs_begin(&e, dst, cap);
    cobs_put_all(&e, src, len);
    return cobs_end(&e);
}

int esb_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap, size_t *out_len) {
    size_t idx = 0, out = 0;
    while (idx < len) {
        uint8_t code = src[idx++];
        size_t end, i;
        if (code == 0) return ESB_ERR_COBS;
        end = idx + code - 1u;
        if (end > len) return ESB_ERR_COBS; /* not enough input bytes for the code */
        for (i = idx; i < end; i++) {
            if (src[i] == 0) return ESB_ERR_COBS;
            if (out >= cap) return ESB_ERR_BUFFER;
            dst[out++] = src[i];
        }
        idx = end;
        if (idx < len && code < 0xFFu) {
            if (out >= cap) return ESB_ERR_BUFFER;
            dst[out++] = 0;
        }
    }
    *out_len = out;
    return ESB_OK;
}

/* ---- frames --------------------------------------------------------------------------- */

int esb_frame_encode(uint8_t type, uint8_t flags, uint16_t seq, const uint8_t *payload, uint16_t len,
                     uint8_t *wire, size_t cap, size_t *wire_len) {
    uint8_t header[ESB_HEADER_SIZE];
    uint8_t crc_bytes[ESB_CRC_SIZE];
    uint32_t crc;
    cobs_enc_t e;
    size_t n;
    if (len > ESB_MAX_PAYLOAD || (len > 0 && payload == NULL) || cap < 3u) return ESB_ERR_BUFFER;
    header[0] = (uint8_t)ESB_PROTOCOL_VERSION;
    header[1] = type;
    header[2] = flags;
    put16(header + 3, seq);
    put16(header + 5, len);
    crc = esb_crc32(0, header, sizeof header);
    crc = esb_crc32(crc, payload, len);
    put32(crc_bytes, crc);
    wire[0] = 0;
    cobs_begin(&e, wire + 1, cap - 2u);
    cobs_put_all(&e, header, sizeof header);
    cobs_put_all(&e, payload, len);
    cobs_put_all(&e, crc_bytes, sizeof crc_bytes);
    n = cobs_end(&e);
    if (n == 0) return ESB_ERR_BUFFER;
    wire[n + 1u] = 0;
    *wire_len = n + 2u;
    return ESB_OK;
}

int esb_frame_parse(const uint8_t *raw, size_t len, esb_frame_t *out) {
    size_t body;
    uint16_t length;
    if (len < ESB_OVERHEAD) return ESB_ERR_SHORT;
    body = len - ESB_CRC_SIZE;
    if (get32(raw + body) != esb_crc32(0, raw, body)) return ESB_ERR_CRC;
    if (raw[0] != ESB_PROTOCOL_VERSION) return ESB_ERR_VERSION;
    length = get16(raw + 5);
    if ((size_t)length != body - ESB_HEADER_SIZE || length > ESB_MAX_PAYLOAD) return ESB_ERR_LENGTH;
    out->version = raw[0];
    out->type = raw[1];
    out->flags = raw[2];
    out->seq = get16(raw + 3);
    out->length = length;
    out->payload = raw + ESB_HEADER_SIZE;
    return ESB_OK;
}

void esb_decoder_init(esb_decoder_t *d) {
    int i;
    d->segment_len = 0;
    d->discarding = 0;
    d->frames = 0;
    for (i = 0; i < ESB_NUM_REJECT_REASONS; i++) d->rejected[i] = 0;
}

static int reject(esb_decoder_t *d, int status) {
    d->rejected[-status - 1]++;
    return status;
}

int esb_decoder_push(esb_decoder_t *d, uint8_t byte, esb_frame_t *out) {
    size_t raw_len;
    int rc;
    uint16_t n;
    if (byte != 0) {
        if (d->discarding) return 0;
        if (d->segment_len >= ESB_MAX_ENCODED) {
            d->discarding = 1; /* longer than any frame: skip it without buffering */
            return 0;
        }
        d->segment[d->segment_len++] = byte;
        return 0;
    }
    n = d->segment_len;
    d->segment_len = 0;
    if (d->discarding) {
        d->discarding = 0;
        return reject(d, ESB_ERR_OVERSIZE);
    }
    if (n == 0) return 0; /* between two frames */
    rc = esb_cobs_decode(d->segment, n, d->raw, sizeof d->raw, &raw_len);
    if (rc != ESB_OK) return reject(d, ESB_ERR_COBS); /* never ESB_ERR_BUFFER: raw is as long as segment */
    rc = esb_frame_parse(d->raw, raw_len, out);
    if (rc != ESB_OK) return reject(d, rc);
    d->frames++;
    return 1;
}

/* ---- messages ------------------------------------------------------------------------- */

static int put_str8(uint8_t *buf, size_t cap, size_t at, const char *text) {
    size_t n = text ? text_length(text) : 0u;
    if (n > 255u || at + 1u + n > cap) return ESB_ERR_BUFFER;
    buf[at] = (uint8_t)n;
    copy_bytes(buf + at + 1u, (const uint8_t *)text, n);
    return (int)(at + 1u + n);
}

/* reads a str8 at *at; advances *at */
static int get_str8(const esb_frame_t *f, size_t *at, esb_str_t *s) {
    uint8_t n;
    if (*at >= f->length) return ESB_ERR_PAYLOAD;
    n = f->payload[*at];
    if (*at + 1u + n > f->length) return ESB_ERR_PAYLOAD;
    s->ptr = (const char *)(f->payload + *at + 1u);
    s->len = n;
    *at += 1u + n;
    return ESB_OK;
}

static int expect(const esb_frame_t *f, uint8_t type, size_t min_len) {
    if (f->type != type) return ESB_ERR_TYPE;
    if (f->length < min_len) return ESB_ERR_PAYLOAD;
    return ESB_OK;
}

int esb_build_hello(uint8_t *buf, size_t cap, const esb_hello_t *h) {
    if (cap < 17u) return ESB_ERR_BUFFER;
    buf[0] = h->protocol;
    buf[1] = h->fw_major;
    buf[2] = h->fw_minor;
    buf[3] = h->fw_patch;
    put32(buf + 4, h->sample_rate);
    buf[8] = h->channels;
    buf[9] = h->sample_format;
    buf[10] = h->image_formats;
    put16(buf + 11, h->capabilities);
    put16(buf + 13, h->max_payload);
    put16(buf + 15, h->chunk_samples);
    return put_str8(buf, cap, 17u, h->name);
}

int esb_build_wake(uint8_t *buf, size_t cap, uint16_t query, float confidence, uint32_t timestamp_ms,
                   const char *word) {
    if (cap < 10u) return ESB_ERR_BUFFER;
    put16(buf, query);
    putf32(buf + 2, confidence);
    put32(buf + 6, timestamp_ms);
    return put_str8(buf, cap, 10u, word);
}

int esb_build_button(uint8_t *buf, size_t cap, uint8_t button, uint8_t action, uint32_t timestamp_ms) {
    if (cap < 6u) return ESB_ERR_BUFFER;
    buf[0] = button;
    buf[1] = action;
    put32(buf + 2, timestamp_ms);
    return 6;
}

int esb_build_audio(uint8_t *buf, size_t cap, uint16_t query, uint32_t index, uint32_t sample_offset,
                    const int16_t *samples, size_t n) {
    size_t i;
    if (n > (ESB_MAX_PAYLOAD - 10u) / 2u || cap < 10u + 2u * n) return ESB_ERR_BUFFER;
    put16(buf, query);
    put32(buf + 2, index);
    put32(buf + 6, sample_offset);
    for (i = 0; i < n; i++) put16(buf + 10u + 2u * i, (uint16_t)samples[i]);
    return (int)(10u + 2u * n);
}

int esb_build_end_of_utterance(uint8_t *buf, size_t cap, uint16_t query, uint32_t samples, uint32_t dropped,
                               uint8_t reason) {
    if (cap < 11u) return ESB_ERR_BUFFER;
    put16(buf, query);
    put32(buf + 2, samples);
    put32(buf + 6, dropped);
    buf[10] = reason;
    return 11;
}

int esb_build_image_chunk(uint8_t *buf, size_t cap, uint16_t query, uint32_t offset, uint32_t total,
                          uint8_t format, const uint8_t *data, size_t n) {
    if (n > ESB_MAX_PAYLOAD - 11u || cap < 11u + n || (n > 0 && data == NULL) || (uint64_t)offset + n > total)
        return ESB_ERR_BUFFER;
    put16(buf, query);
    put32(buf + 2, offset);
    put32(buf + 6, total);
    buf[10] = format;
    copy_bytes(buf + 11, data, n);
    return (int)(11u + n);
}

int esb_build_status(uint8_t *buf, size_t cap, const esb_status_t *s) {
    if (cap < 28u) return ESB_ERR_BUFFER;
    put32(buf, s->uptime_ms);
    put32(buf + 4, s->audio_captured);
    put32(buf + 8, s->audio_sent);
    put32(buf + 12, s->audio_dropped);
    put32(buf + 16, s->retransmits);
    put32(buf + 20, s->rx_errors);
    put32(buf + 24, s->rx_duplicates);
    return 28;
}

int esb_build_ack(uint8_t *buf, size_t cap, uint16_t seq) {
    if (cap < 2u) return ESB_ERR_BUFFER;
    put16(buf, seq);
    return 2;
}

int esb_build_nack(uint8_t *buf, size_t cap, uint16_t seq, uint8_t reason) {
    if (cap < 3u) return ESB_ERR_BUFFER;
    put16(buf, seq);
    buf[2] = reason;
    return 3;
}

int esb_build_error(uint8_t *buf, size_t cap, uint16_t code, const char *text) {
    if (cap < 2u) return ESB_ERR_BUFFER;
    put16(buf, code);
    return put_str8(buf, cap, 2u, text);
}

int esb_build_ping(uint8_t *buf, size_t cap, uint32_t nonce) {
    if (cap < 4u) return ESB_ERR_BUFFER;
    put32(buf, nonce);
    return 4;
}

int esb_parse_ack(const esb_frame_t *f, uint16_t *seq) {
    int rc = expect(f, ESB_ACK, 2u);
    if (rc == ESB_OK) *seq = get16(f->payload);
    return rc;
}

int esb_parse_nack(const esb_frame_t *f, uint16_t *seq, uint8_t *reason) {
    int rc = expect(f, ESB_NACK, 3u);
    if (rc == ESB_OK) {
        *seq = get16(f->payload);
        *reason = f->payload[2];
    }
    return rc;
}

int esb_parse_credit(const esb_frame_t *f, uint32_t *limit) {
    int rc = expect(f, ESB_CREDIT, 4u);
    if (rc == ESB_OK) *limit = get32(f->payload);
    return rc;
}

int esb_parse_ping(const esb_frame_t *f, uint32_t *nonce) {
    if (f->type != ESB_PING && f->type != ESB_PONG) return ESB_ERR_TYPE;
    if (f->length < 4u) return ESB_ERR_PAYLOAD;
    *nonce = get32(f->payload);
    return ESB_OK;
}

int esb_parse_error(const esb_frame_t *f, uint16_t *code, esb_str_t *text) {
    size_t at = 2u;
    int rc = expect(f, ESB_ERROR, 2u);
    if (rc != ESB_OK) return rc;
    *code = get16(f->payload);
    return get_str8(f, &at, text);
}

int esb_parse_led(const esb_frame_t *f, esb_led_t *led) {
    int rc = expect(f, ESB_LED, 6u);
    if (rc != ESB_OK) return rc;
    led->state = f->payload[0];
    led->r = f->payload[1];
    led->g = f->payload[2];
    led->b = f->payload[3];
    led->period_ms = get16(f->payload + 4);
    return ESB_OK;
}

int esb_parse_display(const esb_frame_t *f, uint8_t *line, esb_str_t *text) {
    size_t at = 1u;
    int rc = expect(f, ESB_DISPLAY, 1u);
    if (rc != ESB_OK) return rc;
    *line = f->payload[0];
    return get_str8(f, &at, text);
}

int esb_parse_shard_status(const esb_frame_t *f, esb_shard_status_t *s) {
    size_t at = 9u;
    int rc = expect(f, ESB_SHARD_STATUS, 9u);
    if (rc != ESB_OK) return rc;
    s->state = f->payload[0];
    s->products = get32(f->payload + 1);
    s->age_s = get32(f->payload + 5);
    return get_str8(f, &at, &s->space_id);
}

int esb_parse_result(const esb_frame_t *f, esb_result_t *r) {
    size_t at = 4u;
    uint8_t i;
    esb_str_t skip;
    int rc = expect(f, ESB_RESULT, 4u);
    if (rc != ESB_OK) return rc;
    r->query = get16(f->payload);
    r->status = f->payload[2];
    r->count = f->payload[3];
    r->hits = f->payload + at;
    for (i = 0; i < r->count; i++) {
        if (at + 4u > f->length) return ESB_ERR_PAYLOAD;
        at += 4u;
        if (get_str8(f, &at, &skip) != ESB_OK || get_str8(f, &at, &skip) != ESB_OK) return ESB_ERR_PAYLOAD;
    }
    r->hits_len = (size_t)(f->payload + at - r->hits);
    if (get_str8(f, &at, &r->transcript) != ESB_OK) return ESB_ERR_PAYLOAD;
    return get_str8(f, &at, &r->error);
}

int esb_result_hit(const esb_result_t *r, uint8_t i, esb_hit_t *hit) {
    const uint8_t *p = r->hits;
    uint8_t k;
    if (i >= r->count) return ESB_ERR_BUFFER;
    for (k = 0;; k++) {
        hit->score = getf32(p);
        hit->product_id.len = p[4];
        hit->product_id.ptr = (const char *)(p + 5);
        p += 5u + p[4];
        hit->title.len = p[0];
        hit->title.ptr = (const char *)(p + 1);
        p += 1u + p[0];
        if (k == i) return ESB_OK;
    }
}
