// Reference transcriber for benchmarks: whisper.cpp's own C API on the WHOLE file, the way
// whisper.cpp's `whisper-cli` runs it (one whisper_full() call over the mixed audio), built from
// the whisper.cpp sources that the whisper-rs-sys crate vendors (the crate does not vendor the
// examples/ folder, so whisper-cli itself cannot be built from them).
// Decoding settings match fhirscribe's: greedy (best_of 1), English, token timestamps, no
// flash attention, non-speech tokens suppressed.
// Usage: whisper_ref MODEL.bin AUDIO_16k_mono_s16.wav THREADS   (text on stdout)
#include "whisper.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

static void quiet(enum ggml_log_level, const char *, void *) {}

static bool read_wav(const char *path, std::vector<float> &out) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    std::vector<unsigned char> b;
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) b.insert(b.end(), buf, buf + n);
    fclose(f);
    if (b.size() < 44 || memcmp(b.data(), "RIFF", 4) || memcmp(b.data() + 8, "WAVE", 4)) return false;
    size_t p = 12;
    int channels = 0, bits = 0, rate = 0;
    while (p + 8 <= b.size()) {
        unsigned len = b[p + 4] | b[p + 5] << 8 | b[p + 6] << 16 | (unsigned)b[p + 7] << 24;
        if (!memcmp(b.data() + p, "fmt ", 4)) {
            channels = b[p + 10] | b[p + 11] << 8;
            rate = b[p + 12] | b[p + 13] << 8 | b[p + 14] << 16;
            bits = b[p + 22] | b[p + 23] << 8;
        } else if (!memcmp(b.data() + p, "data", 4)) {
            if (channels != 1 || bits != 16 || rate != 16000) return false;
            size_t end = p + 8 + len > b.size() ? b.size() : p + 8 + len;
            for (size_t i = p + 8; i + 1 < end; i += 2) out.push_back((short)(b[i] | b[i + 1] << 8) / 32768.0f);
            return true;
        }
        p += 8 + len + (len & 1);
    }
    return false;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL AUDIO.wav THREADS\n", argv[0]);
        return 2;
    }
    whisper_log_set(quiet, nullptr);
    std::vector<float> pcm;
    if (!read_wav(argv[2], pcm)) {
        fprintf(stderr, "need a 16 kHz mono 16-bit WAV: %s\n", argv[2]);
        return 1;
    }
    whisper_context_params cp = whisper_context_default_params();
    cp.use_gpu = false;
    cp.flash_attn = false;
    whisper_context *ctx = whisper_init_from_file_with_params(argv[1], cp);
    if (!ctx) return 1;
    whisper_full_params p = whisper_full_default_params(WHISPER_SAMPLING_GREEDY);
    p.n_threads = atoi(argv[3]);
    p.language = "en";
    p.greedy.best_of = 1;
    p.token_timestamps = true;
    p.suppress_nst = true;
    p.print_progress = false;
    p.print_realtime = false;
    p.print_timestamps = false;
    p.print_special = false;
    if (whisper_full(ctx, p, pcm.data(), (int)pcm.size()) != 0) return 1;
    for (int i = 0; i < whisper_full_n_segments(ctx); i++) printf("%s\n", whisper_full_get_segment_text(ctx, i));
    whisper_free(ctx);
    return 0;
}
