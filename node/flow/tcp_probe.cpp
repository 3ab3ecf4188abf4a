// linux/tcp.h, not netinet/tcp.h: only the kernel header has the current struct tcp_info
// (tcpi_min_rtt, tcpi_delivery_rate). The two headers cannot be mixed, which is why this file
// includes no Asio header.
#include "node/flow/tcp_probe.hpp"

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <limits>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

namespace glasnode::node {

tcp_stats read_tcp_stats(int fd) noexcept {
    tcp_stats s;
    struct tcp_info info;
    std::memset(&info, 0, sizeof info);
    socklen_t len = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0)
        return s;
    s.valid = true;
    s.rtt_us = info.tcpi_rtt;
    s.rttvar_us = info.tcpi_rttvar;
    s.total_retrans = info.tcpi_total_retrans;
    s.snd_cwnd = info.tcpi_snd_cwnd;
    // Older kernels return a shorter struct: fields past `len` stay 0.
    // The kernel reports ~0 until the connection has an RTT sample: that is "unknown" (0).
    if (len >= offsetof(struct tcp_info, tcpi_min_rtt) + sizeof info.tcpi_min_rtt &&
        info.tcpi_min_rtt != ~0u)
        s.min_rtt_us = info.tcpi_min_rtt;
    if (len >= offsetof(struct tcp_info, tcpi_delivery_rate) + sizeof info.tcpi_delivery_rate)
        s.delivery_rate = info.tcpi_delivery_rate;
    if (len >= offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof info.tcpi_bytes_acked)
        s.bytes_acked = info.tcpi_bytes_acked;
    if (len >= offsetof(struct tcp_info, tcpi_bytes_received) + sizeof info.tcpi_bytes_received)
        s.bytes_received = info.tcpi_bytes_received;
    return s;
}

status set_congestion_control(int fd, std::string_view name) {
    if (name.empty() || name.size() >= 16)
        return make_error(errc::invalid_argument,
                          "congestion control name must be 1-15 characters");
    if (::setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name.data(),
                     static_cast<socklen_t>(name.size())) != 0)
        return make_error(errc::invalid_argument,
                          "TCP_CONGESTION \"" + std::string{name} + "\": " + std::strerror(errno));
    return {};
}

status set_max_pacing_rate(int fd, std::uint64_t bits_per_second) {
    if (bits_per_second == 0)
        return make_error(errc::invalid_argument, "a pacing rate must be above 0 bit/s");
    const std::uint64_t bytes = (bits_per_second + 7) / 8;
    const unsigned int value =
        bytes >= std::numeric_limits<unsigned int>::max() ? ~0u : static_cast<unsigned int>(bytes);
    if (::setsockopt(fd, SOL_SOCKET, SO_MAX_PACING_RATE, &value, sizeof value) != 0)
        return make_error(errc::invalid_argument, "SO_MAX_PACING_RATE " +
                                                      std::to_string(bits_per_second) +
                                                      " bit/s: " + std::strerror(errno));
    return {};
}

std::string congestion_control(int fd) {
    char name[16] = {};
    socklen_t len = sizeof name;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &len) != 0)
        return {};
    return std::string(name, ::strnlen(name, len));
}

std::size_t unread_bytes(int fd) noexcept {
    int n = 0;
    if (::ioctl(fd, SIOCINQ, &n) != 0 || n < 0)
        return 0;
    return static_cast<std::size_t>(n);
}

int pending_socket_error(int fd) noexcept {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return 0;
    return err;
}

} // namespace glasnode::node
