// Kernel-side TCP facts about one connected socket, read through its file descriptor: TCP_INFO,
// the congestion control in use, and whether a close would reset the connection.
//
// These wrap single getsockopt/setsockopt/ioctl calls; they never block and never throw.
// Thread-safety: as safe as the calls themselves (any thread, any socket).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/result.hpp"

namespace glasnode::node {

// A subset of Linux's struct tcp_info, in plain units.
struct tcp_stats {
    bool valid = false;               // false if TCP_INFO could not be read
    std::uint32_t rtt_us = 0;         // smoothed RTT
    std::uint32_t rttvar_us = 0;      // RTT variance
    std::uint32_t min_rtt_us = 0;     // minimum RTT seen (0 if the kernel does not say)
    std::uint32_t total_retrans = 0;  // segments retransmitted over the connection's life
    std::uint32_t snd_cwnd = 0;       // congestion window, in segments
    std::uint64_t delivery_rate = 0;  // bytes per second, the kernel's latest estimate
    std::uint64_t bytes_acked = 0;    // bytes of ours the peer has acknowledged
    std::uint64_t bytes_received = 0; // bytes received from the peer
};

tcp_stats read_tcp_stats(int fd) noexcept;

// Sets TCP_CONGESTION ("cubic", "bbr", "reno" ...). errc::invalid_argument if the kernel does
// not offer that algorithm (or it is not allowed to unprivileged processes).
status set_congestion_control(int fd, std::string_view name);
// The algorithm the socket uses now, "" if it cannot be read.
std::string congestion_control(int fd);

// Caps the rate the kernel paces this socket's sends at (SO_MAX_PACING_RATE, TCP's own pacing:
// no fq qdisc needed), in bit/s, > 0; rates above 34 Gbit/s (the option's 32-bit bytes/s) mean
// no cap. errc::invalid_argument if the kernel refuses it.
status set_max_pacing_rate(int fd, std::uint64_t bits_per_second);

// Bytes received but not read yet. Closing a socket that holds unread bytes makes the kernel
// send a RST instead of a FIN, so the flow engine counts such a close as a reset it sent.
std::size_t unread_bytes(int fd) noexcept;

// The socket's pending error (SO_ERROR), cleared by reading it; 0 if none.
int pending_socket_error(int fd) noexcept;

} // namespace glasnode::node
