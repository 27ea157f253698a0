/*
 * edgeshelf firmware bridge: frame and message codec for microcontrollers (C99).
 *
 * The wire format is specified in firmware_bridge/PROTOCOL.md; this code is byte-identical
 * with the Python side (edgeshelf.firmware_bridge), checked on shared test vectors
 * (firmware_bridge/test_vectors.json) by firmware_bridge/c/test_bridge.c.
 *
 * No heap, no mutable globals, no libc calls: only the freestanding <stdint.h> and <stddef.h>
 * (builds with -ffreestanding). Not thread-safe per decoder; decoders are independent.
 * All multi-byte fields are little-endian; floats are IEEE-754 binary32.
 *
 * Typical firmware use:
 *
 *   static esb_decoder_t rx;                // ~2.1 KB with the default 1024-byte payloads
 *   esb_decoder_init(&rx);
 *   ...in the UART receive loop:
 *   esb_frame_t frame;
 *   if (esb_decoder_push(&rx, byte, &frame) == 1) handle(&frame);   // frame.payload valid until next push
 *
 *   uint8_t payload[32], wire[ESB_WIRE_SIZE(32)];
 *   int n = esb_build_wake(payload, sizeof payload, query, 0.93f, now_ms, "hey shelf");
 *   size_t wire_len;
 *   if (n >= 0 && esb_frame_encode(ESB_WAKE, ESB_FLAG_ACK_REQUEST, seq++, payload, (uint16_t)n,
 *                                  wire, sizeof wire, &wire_len) == ESB_OK) uart_write(wire, wire_len);
 */
#ifndef EDGESHELF_BRIDGE_H
#define EDGESHELF_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ESB_PROTOCOL_VERSION 1u
#define ESB_HEADER_SIZE 7u
#define ESB_CRC_SIZE 4u
#define ESB_OVERHEAD (ESB_HEADER_SIZE + ESB_CRC_SIZE)

/* The protocol allows payloads up to 1024 bytes. A small device may build with a smaller
 * -DESB_MAX_PAYLOAD (>= 64) and announce it in HELLO.max_payload; the host then never sends
 * it anything larger. */
#ifndef ESB_MAX_PAYLOAD
#define ESB_MAX_PAYLOAD 1024u
#endif

#define ESB_MAX_RAW (ESB_MAX_PAYLOAD + ESB_OVERHEAD)
/* COBS adds one code byte per started run of 254 bytes */
#define ESB_COBS_SIZE(n) ((n) + ((n) + 253u) / 254u + ((n) == 0u ? 1u : 0u))
#define ESB_MAX_ENCODED ESB_COBS_SIZE(ESB_MAX_RAW)
/* bytes on the wire for a payload of n bytes: 00 COBS(raw) 00 */
#define ESB_WIRE_SIZE(n) (ESB_COBS_SIZE((n) + ESB_OVERHEAD) + 2u)

#define ESB_FLAG_ACK_REQUEST 0x01u
#define ESB_FLAG_RETRANSMIT 0x02u

/* Message types (the frame's type byte). F = firmware, H = host. */
enum esb_type {
    ESB_HELLO = 0x01,            /* F->H reliable */
    ESB_WAKE = 0x02,             /* F->H reliable */
    ESB_BUTTON = 0x03,           /* F->H reliable */
    ESB_AUDIO = 0x10,            /* F->H credit-controlled */
    ESB_END_OF_UTTERANCE = 0x11, /* F->H reliable */
    ESB_IMAGE_CHUNK = 0x12,      /* F->H reliable */
    ESB_STATUS = 0x13,           /* F->H reliable */
    ESB_RESULT = 0x20,           /* H->F reliable */
    ESB_LED = 0x21,              /* H->F reliable */
    ESB_DISPLAY = 0x22,          /* H->F reliable */
    ESB_SHARD_STATUS = 0x23,     /* H->F reliable */
    ESB_CREDIT = 0x24,           /* H->F */
    ESB_ACK = 0x30,
    ESB_NACK = 0x31,
    ESB_ERROR = 0x32, /* reliable */
    ESB_PING = 0x33,
    ESB_PONG = 0x34
};

/* Return codes: 0 or a positive count on success, negative on failure. The frame-level
 * errors -1..-6 are the decoder's rejection reasons, in the order the checks run. */
enum esb_status {
    ESB_OK = 0,
    ESB_ERR_OVERSIZE = -1, /* segment longer than any frame can be */
    ESB_ERR_COBS = -2,     /* bad COBS stuffing */
    ESB_ERR_SHORT = -3,    /* fewer than 11 bytes */
    ESB_ERR_CRC = -4,      /* CRC32 mismatch */
    ESB_ERR_VERSION = -5,  /* intact frame of another protocol version */
    ESB_ERR_LENGTH = -6,   /* length field disagrees with the bytes, or > ESB_MAX_PAYLOAD */
    ESB_ERR_BUFFER = -7,   /* output buffer too small, or an argument out of range */
    ESB_ERR_PAYLOAD = -8,  /* payload does not match its message layout */
    ESB_ERR_TYPE = -9      /* frame is not of the type the parser expects */
};

#define ESB_NUM_REJECT_REASONS 6

/* "oversize", "cobs", ... (the Python side's FrameError.reason), "ok", or "unknown" */
const char *esb_strerror(int status);

/* ---- checksums and byte stuffing ---------------------------------------------------- */

/* zlib-compatible CRC32 (reflected 0xEDB88320): esb_crc32(0, d, n) == zlib.crc32(d);
 * esb_crc32(esb_crc32(0, a, n), b, m) == zlib.crc32(a + b). */
uint32_t esb_crc32(uint32_t crc, const uint8_t *data, size_t len);

/* COBS, byte-identical with the Python `cobs` package (cobs.cobs.encode / decode).
 * encode: returns the encoded length, or 0 when cap is too small (an encoding is >= 1 byte).
 * decode: ESB_OK with *out_len set, ESB_ERR_COBS on bad input, ESB_ERR_BUFFER when cap is too small. */
size_t esb_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap);
int esb_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap, size_t *out_len);

/* ---- frames -------------------------------------------------------------------------- */

typedef struct {
    uint8_t version;
    uint8_t type;
    uint8_t flags;
    uint16_t seq;
    uint16_t length;        /* payload bytes */
    const uint8_t *payload; /* points into the buffer that was parsed */
} esb_frame_t;

/* type/flags/seq/payload -> wire bytes "00 COBS(raw) 00" (at most ESB_WIRE_SIZE(len) bytes).
 * No intermediate buffer: header, payload and CRC are stuffed on the fly. */
int esb_frame_encode(uint8_t type, uint8_t flags, uint16_t seq, const uint8_t *payload, uint16_t len,
                     uint8_t *wire, size_t cap, size_t *wire_len);

/* raw (COBS-decoded) bytes -> frame; checks size, CRC32, version, length in that order. */
int esb_frame_parse(const uint8_t *raw, size_t len, esb_frame_t *out);

/* Stream decoder: push received bytes one at a time. */
typedef struct {
    uint8_t segment[ESB_MAX_ENCODED];
    uint8_t raw[ESB_MAX_ENCODED]; /* decoded bytes are never more than the encoded ones */
    uint16_t segment_len;
    uint8_t discarding; /* an over-long segment is being skipped up to the next zero */
    uint32_t frames;
    uint32_t rejected[ESB_NUM_REJECT_REASONS]; /* index -status - 1: oversize, cobs, short, crc, version, length */
} esb_decoder_t;

void esb_decoder_init(esb_decoder_t *d);
/* 1: *out holds a frame (its payload is valid until the next push); 0: nothing yet;
 * < 0: a damaged segment was dropped (the reason; decoding resumes with the next frame). */
int esb_decoder_push(esb_decoder_t *d, uint8_t byte, esb_frame_t *out);

/* ---- messages ------------------------------------------------------------------------ */

/* Strings inside payloads are "str8": a length byte and that many bytes of UTF-8.
 * Parsers return them as pointer + length into the payload (not NUL-terminated). */
typedef struct {
    const char *ptr;
    uint8_t len;
} esb_str_t;

typedef struct {
    uint8_t protocol; /* ESB_PROTOCOL_VERSION */
    uint8_t fw_major, fw_minor, fw_patch;
    uint32_t sample_rate;
    uint8_t channels;
    uint8_t sample_format; /* 1 = PCM16LE */
    uint8_t image_formats; /* bit 0 = JPEG */
    uint16_t capabilities; /* ESB_CAP_* */
    uint16_t max_payload;
    uint16_t chunk_samples;
    const char *name; /* NUL-terminated, <= 255 bytes */
} esb_hello_t;

#define ESB_CAP_MICROPHONE 0x0001u
#define ESB_CAP_WAKE_WORD 0x0002u
#define ESB_CAP_BUTTONS 0x0004u
#define ESB_CAP_LEDS 0x0008u
#define ESB_CAP_DISPLAY 0x0010u
#define ESB_CAP_CAMERA 0x0020u

typedef struct {
    uint32_t uptime_ms;
    uint32_t audio_captured, audio_sent, audio_dropped;
    uint32_t retransmits, rx_errors, rx_duplicates;
} esb_status_t;

typedef struct {
    uint8_t state; /* 0 off, 1 idle, 2 listening, 3 thinking, 4 answer, 5 error, 6 custom */
    uint8_t r, g, b;
    uint16_t period_ms;
} esb_led_t;

typedef struct {
    uint8_t state; /* 0 none, 1 ready, 2 updating, 3 stale, 4 error */
    uint32_t products;
    uint32_t age_s;
    esb_str_t space_id;
} esb_shard_status_t;

typedef struct {
    float score;
    esb_str_t product_id;
    esb_str_t title;
} esb_hit_t;

typedef struct {
    uint16_t query;
    uint8_t status; /* 0 ok, 1 no match, 2 error */
    uint8_t count;
    esb_str_t transcript;
    esb_str_t error;
    const uint8_t *hits; /* count x (score f32, id str8, title str8); walk with esb_result_hit */
    size_t hits_len;
} esb_result_t;

/* Builders write a payload into buf and return its length, or ESB_ERR_BUFFER. */
int esb_build_hello(uint8_t *buf, size_t cap, const esb_hello_t *hello);
int esb_build_wake(uint8_t *buf, size_t cap, uint16_t query, float confidence, uint32_t timestamp_ms,
                   const char *word);
int esb_build_button(uint8_t *buf, size_t cap, uint8_t button, uint8_t action, uint32_t timestamp_ms);
/* n samples of native int16 PCM, written little-endian after the 10-byte header */
int esb_build_audio(uint8_t *buf, size_t cap, uint16_t query, uint32_t index, uint32_t sample_offset,
                    const int16_t *samples, size_t n);
int esb_build_end_of_utterance(uint8_t *buf, size_t cap, uint16_t query, uint32_t samples, uint32_t dropped,
                               uint8_t reason);
int esb_build_image_chunk(uint8_t *buf, size_t cap, uint16_t query, uint32_t offset, uint32_t total,
                          uint8_t format, const uint8_t *data, size_t n);
int esb_build_status(uint8_t *buf, size_t cap, const esb_status_t *status);
int esb_build_ack(uint8_t *buf, size_t cap, uint16_t seq);
int esb_build_nack(uint8_t *buf, size_t cap, uint16_t seq, uint8_t reason);
int esb_build_error(uint8_t *buf, size_t cap, uint16_t code, const char *text);
int esb_build_ping(uint8_t *buf, size_t cap, uint32_t nonce); /* PONG: the same payload */

/* Parsers check the frame's type and the payload layout (ESB_ERR_TYPE / ESB_ERR_PAYLOAD);
 * bytes after the known fields are ignored (later revisions may append fields). */
int esb_parse_ack(const esb_frame_t *f, uint16_t *seq);
int esb_parse_nack(const esb_frame_t *f, uint16_t *seq, uint8_t *reason);
int esb_parse_credit(const esb_frame_t *f, uint32_t *limit);
int esb_parse_ping(const esb_frame_t *f, uint32_t *nonce); /* PING or PONG */
int esb_parse_error(const esb_frame_t *f, uint16_t *code, esb_str_t *text);
int esb_parse_led(const esb_frame_t *f, esb_led_t *led);
int esb_parse_display(const esb_frame_t *f, uint8_t *line, esb_str_t *text);
int esb_parse_shard_status(const esb_frame_t *f, esb_shard_status_t *status);
/* validates every hit, the transcript and the error text */
int esb_parse_result(const esb_frame_t *f, esb_result_t *result);
/* the i-th hit of a parsed result (O(i)) */
int esb_result_hit(const esb_result_t *result, uint8_t i, esb_hit_t *hit);

#ifdef __cplusplus
}
#endif

#endif /* EDGESHELF_BRIDGE_H */
