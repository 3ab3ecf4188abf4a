// nfq_delay: holds every packet of one NFQUEUE queue for a fixed time, then accepts it. The
// testbed's substitute for netem delay, which these kernels lack.
//
// usage: nfq_delay --queue N --delay-ms D [--max-held P] [--max-seconds S]
// Prints "nfq_delay ready queue=N delay_ms=D" once bound. The delay is constant, so packets
// leave in arrival order (a FIFO). At most P packets are held (default 50000; a 50 Mbit/s path
// with 60 ms each way holds about 600 packets of both directions): beyond that a packet is
// accepted at once rather than queued without bound, and the first such packet prints
// "nfq_delay: error: ..." on stderr, since the path then no longer has the delay asked for.
// Exits after S seconds (default 900) or on SIGTERM/SIGINT, accepting every held packet first;
// the queue is configured to fail open, so the kernel lets packets through whenever this program
// is not keeping up. Notifications the kernel could not deliver (ENOBUFS) are counted and
// reported the same way: their packets stay in the kernel's queue unanswered, i.e. are lost.
// The final line on stderr gives both counts. Single-threaded. Exit status 0 on a clean stop
// with no packet passed undelayed or lost, 3 on a stop after either happened, 1 when the queue
// could not be set up.

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <string_view>
#include <sys/socket.h>

namespace {

using steady = std::chrono::steady_clock;

struct held_packet {
    std::uint32_t id;
    steady::time_point release_at;
};

struct delay_state {
    nfq_q_handle* queue = nullptr;
    std::deque<held_packet> held;
    std::chrono::milliseconds delay{0};
    std::size_t max_held = 50000;
    std::uint64_t passed_at_once = 0;
    std::uint64_t lost_notifications = 0;
};

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int) {
    g_stop = 1;
}

int on_packet(nfq_q_handle* queue, nfgenmsg*, nfq_data* data, void* opaque) {
    auto* state = static_cast<delay_state*>(opaque);
    const nfqnl_msg_packet_hdr* header = nfq_get_msg_packet_hdr(data);
    if (header == nullptr) {
        return 0;
    }
    const std::uint32_t id = ntohl(header->packet_id);
    if (state->held.size() < state->max_held) {
        // No exception may cross the C library's frames: when memory runs out, do not delay.
        try {
            state->held.push_back({id, steady::now() + state->delay});
            return 0;
        } catch (...) {
        }
    }
    if (state->passed_at_once++ == 0) {
        std::fprintf(stderr,
                     "nfq_delay: error: %zu packets held (--max-held); passing packets without "
                     "delay\n",
                     state->held.size());
    }
    return nfq_set_verdict(queue, id, NF_ACCEPT, 0, nullptr);
}

void release_due(delay_state& state, steady::time_point now) {
    while (!state.held.empty() && state.held.front().release_at <= now) {
        nfq_set_verdict(state.queue, state.held.front().id, NF_ACCEPT, 0, nullptr);
        state.held.pop_front();
    }
}

bool parse_number(const char* text, long min, long max, long& out) {
    char* end = nullptr;
    errno = 0;
    const long value = std::strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max) {
        return false;
    }
    out = value;
    return true;
}

int usage() {
    std::fprintf(stderr,
                 "usage: nfq_delay --queue N --delay-ms D [--max-held P] [--max-seconds S]\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    long queue_num = -1;
    long delay_ms = -1;
    long max_held = 50000;
    long max_seconds = 900;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view option = argv[i];
        bool ok = false;
        if (option == "--queue") {
            ok = parse_number(argv[i + 1], 0, 65535, queue_num);
        } else if (option == "--delay-ms") {
            ok = parse_number(argv[i + 1], 0, 10000, delay_ms);
        } else if (option == "--max-held") {
            ok = parse_number(argv[i + 1], 1, 1000000, max_held);
        } else if (option == "--max-seconds") {
            ok = parse_number(argv[i + 1], 1, 86400, max_seconds);
        }
        if (!ok) {
            return usage();
        }
    }
    if (argc % 2 != 1 || queue_num < 0 || delay_ms < 0) {
        return usage();
    }

    delay_state state;
    state.delay = std::chrono::milliseconds(delay_ms);
    state.max_held = static_cast<std::size_t>(max_held);

    nfq_handle* handle = nfq_open();
    if (handle == nullptr) {
        std::perror("nfq_open");
        return 1;
    }
    state.queue =
        nfq_create_queue(handle, static_cast<std::uint16_t>(queue_num), &on_packet, &state);
    if (state.queue == nullptr) {
        std::perror("nfq_create_queue");
        nfq_close(handle);
        return 1;
    }
    // Only the verdict is needed: copy no payload. A long kernel queue and a large socket buffer
    // keep a 50 Mbit/s path with tens of milliseconds of delay from overflowing.
    if (nfq_set_mode(state.queue, NFQNL_COPY_META, 0) < 0 ||
        nfq_set_queue_maxlen(state.queue, static_cast<std::uint32_t>(max_held)) < 0) {
        std::perror("nfq_set_mode/nfq_set_queue_maxlen");
        nfq_destroy_queue(state.queue);
        nfq_close(handle);
        return 1;
    }
    nfq_set_queue_flags(state.queue, NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_FAIL_OPEN);
    nfnl_rcvbufsiz(nfq_nfnlh(handle), 16u << 20);

    std::signal(SIGTERM, &on_signal);
    std::signal(SIGINT, &on_signal);
    std::printf("nfq_delay ready queue=%ld delay_ms=%ld\n", queue_num, delay_ms);
    std::fflush(stdout);

    const int fd = nfq_fd(handle);
    const steady::time_point deadline = steady::now() + std::chrono::seconds(max_seconds);
    alignas(8) static char buffer[1 << 16];
    while (g_stop == 0) {
        const steady::time_point now = steady::now();
        if (now >= deadline) {
            break;
        }
        release_due(state, now);
        steady::time_point wake = deadline;
        if (!state.held.empty() && state.held.front().release_at < wake) {
            wake = state.held.front().release_at;
        }
        const auto wait = std::chrono::ceil<std::chrono::milliseconds>(wake - now).count();
        pollfd pfd{fd, POLLIN, 0};
        const int ready = ::poll(&pfd, 1, static_cast<int>(wait));
        if (ready < 0 && errno != EINTR) {
            std::perror("poll");
            break;
        }
        if (ready > 0) {
            // Drain what is queued without blocking, then go back to releasing.
            for (;;) {
                const ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
                if (n < 0 && errno == ENOBUFS) {
                    // The kernel dropped notifications: their packets are never answered.
                    if (state.lost_notifications++ == 0) {
                        std::fprintf(stderr, "nfq_delay: error: notifications lost (ENOBUFS): "
                                             "packets lost in the kernel's queue\n");
                    }
                    continue;
                }
                if (n <= 0) {
                    break;
                }
                nfq_handle_packet(handle, buffer, static_cast<int>(n));
            }
        }
    }
    release_due(state, steady::time_point::max());
    std::fprintf(stderr,
                 "nfq_delay: stopped; %llu packets passed without delay (too many held), %llu "
                 "overruns of the notification socket (ENOBUFS)\n",
                 static_cast<unsigned long long>(state.passed_at_once),
                 static_cast<unsigned long long>(state.lost_notifications));
    nfq_destroy_queue(state.queue);
    nfq_close(handle);
    return state.passed_at_once == 0 && state.lost_notifications == 0 ? 0 : 3;
}
