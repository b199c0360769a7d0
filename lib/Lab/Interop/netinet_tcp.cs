// <linux/tcp.h> (uapi): struct tcp_info and the TCP_* socket options, C names kept.
// The layout is the kernel's, not glibc's <netinet/tcp.h> (whose struct tcp_info stops at 104 bytes).
// Debian 12's linux-libc-dev 6.1 header ends at tcpi_snd_wnd (232 bytes); the fields after it are from the
// kernel's uapi header: tcpi_rcv_wnd/tcpi_rehash (6.2), tcpi_total_rto* (6.7), the AccECN trailer (6.18).
// Measured on 6.18.44: getsockopt(TCP_INFO) returns optlen 280 = sizeof(tcp_info) below.
using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

/// <summary>struct tcp_info from the kernel's include/uapi/linux/tcp.h (Linux 6.18, 280 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct tcp_info
{
    public byte tcpi_state;
    public byte tcpi_ca_state;
    public byte tcpi_retransmits;
    public byte tcpi_probes;
    public byte tcpi_backoff;
    public byte tcpi_options;
    /// <summary>Bitfields tcpi_snd_wscale:4 (low nibble), tcpi_rcv_wscale:4 (high nibble).</summary>
    public byte tcpi_snd_rcv_wscale;
    /// <summary>Bitfields tcpi_delivery_rate_app_limited:1, tcpi_fastopen_client_fail:2.</summary>
    public byte tcpi_delivery_rate_app_limited_fastopen_client_fail;

    public uint tcpi_rto;
    public uint tcpi_ato;
    public uint tcpi_snd_mss;
    public uint tcpi_rcv_mss;

    public uint tcpi_unacked;
    public uint tcpi_sacked;
    public uint tcpi_lost;
    public uint tcpi_retrans;
    public uint tcpi_fackets;

    public uint tcpi_last_data_sent;
    public uint tcpi_last_ack_sent;
    public uint tcpi_last_data_recv;
    public uint tcpi_last_ack_recv;

    public uint tcpi_pmtu;
    public uint tcpi_rcv_ssthresh;
    public uint tcpi_rtt;
    public uint tcpi_rttvar;
    public uint tcpi_snd_ssthresh;
    public uint tcpi_snd_cwnd;
    public uint tcpi_advmss;
    public uint tcpi_reordering;

    public uint tcpi_rcv_rtt;
    public uint tcpi_rcv_space;

    public uint tcpi_total_retrans;

    public ulong tcpi_pacing_rate;
    public ulong tcpi_max_pacing_rate;
    public ulong tcpi_bytes_acked;
    public ulong tcpi_bytes_received;
    public uint tcpi_segs_out;
    public uint tcpi_segs_in;

    public uint tcpi_notsent_bytes;
    public uint tcpi_min_rtt;
    public uint tcpi_data_segs_in;
    public uint tcpi_data_segs_out;

    public ulong tcpi_delivery_rate;

    public ulong tcpi_busy_time;
    public ulong tcpi_rwnd_limited;
    public ulong tcpi_sndbuf_limited;

    public uint tcpi_delivered;
    public uint tcpi_delivered_ce;

    public ulong tcpi_bytes_sent;
    public ulong tcpi_bytes_retrans;
    public uint tcpi_dsack_dups;
    public uint tcpi_reord_seen;

    public uint tcpi_rcv_ooopack;

    public uint tcpi_snd_wnd;
    // --- not in Debian 12's 6.1 header; from the kernel's uapi header ---
    public uint tcpi_rcv_wnd;
    public uint tcpi_rehash;

    public ushort tcpi_total_rto;
    public ushort tcpi_total_rto_recoveries;
    public uint tcpi_total_rto_time;

    public uint tcpi_received_ce;
    public uint tcpi_delivered_e1_bytes;
    public uint tcpi_delivered_e0_bytes;
    public uint tcpi_delivered_ce_bytes;
    public uint tcpi_received_e1_bytes;
    public uint tcpi_received_e0_bytes;
    public uint tcpi_received_ce_bytes;
    public ushort tcpi_accecn_fail_mode;
    public ushort tcpi_accecn_opt_seen;
}

/// <summary>Constants from &lt;linux/tcp.h&gt; and &lt;net/tcp_states.h&gt;.</summary>
public static class netinet_tcp
{
    public const int TCP_NODELAY = 1;
    public const int TCP_MAXSEG = 2;
    public const int TCP_CORK = 3;
    public const int TCP_KEEPIDLE = 4;
    public const int TCP_KEEPINTVL = 5;
    public const int TCP_KEEPCNT = 6;
    public const int TCP_SYNCNT = 7;
    public const int TCP_LINGER2 = 8;
    public const int TCP_DEFER_ACCEPT = 9;
    public const int TCP_WINDOW_CLAMP = 10;
    public const int TCP_INFO = 11;
    public const int TCP_QUICKACK = 12;
    public const int TCP_CONGESTION = 13;
    public const int TCP_USER_TIMEOUT = 18;
    public const int TCP_FASTOPEN = 23;
    public const int TCP_NOTSENT_LOWAT = 25;
    public const int TCP_INQ = 36;

    // tcpi_options bits
    public const byte TCPI_OPT_TIMESTAMPS = 1;
    public const byte TCPI_OPT_SACK = 2;
    public const byte TCPI_OPT_WSCALE = 4;
    public const byte TCPI_OPT_ECN = 8;
    public const byte TCPI_OPT_ECN_SEEN = 16;
    public const byte TCPI_OPT_SYN_DATA = 32;
    public const byte TCPI_OPT_USEC_TS = 64;
    public const byte TCPI_OPT_TFO_CHILD = 128;

    // include/net/tcp_states.h: the values of tcpi_state / inet_diag_msg.idiag_state
    public const byte TCP_ESTABLISHED = 1;
    public const byte TCP_SYN_SENT = 2;
    public const byte TCP_SYN_RECV = 3;
    public const byte TCP_FIN_WAIT1 = 4;
    public const byte TCP_FIN_WAIT2 = 5;
    public const byte TCP_TIME_WAIT = 6;
    public const byte TCP_CLOSE = 7;
    public const byte TCP_CLOSE_WAIT = 8;
    public const byte TCP_LAST_ACK = 9;
    public const byte TCP_LISTEN = 10;
    public const byte TCP_CLOSING = 11;
    public const byte TCP_NEW_SYN_RECV = 12;
}
