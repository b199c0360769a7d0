using System.Runtime.InteropServices;
using Lab.Interop;
using Tmds.Linux;

namespace Lab.Sockets;

/// <summary>TCP states with the kernel's numbers (include/net/tcp_states.h); ss prints them as ESTAB, SYN-SENT, ...</summary>
public enum TcpState : byte
{
    Unknown = 0,
    Established = 1,
    SynSent = 2,
    /// <summary>A full socket in SYN_RECV (TCP Fast Open children). Request sockets are <see cref="NewSynRecv"/>.</summary>
    SynRecv = 3,
    FinWait1 = 4,
    FinWait2 = 5,
    TimeWait = 6,
    Close = 7,
    CloseWait = 8,
    LastAck = 9,
    Listen = 10,
    Closing = 11,
    /// <summary>
    /// A request socket: a SYN received, SYN-ACK sent, final ACK not yet in (the "SYN queue"). sock_diag reports these
    /// with idiag_state 3 (TCP_SYN_RECV, tcp_req_diag_fill); the lab tells them apart from full SYN_RECV sockets by
    /// the missing INET_DIAG_SHUTDOWN attribute, which the kernel adds to every full socket. Shown as "SYN-RECV" like ss.
    /// </summary>
    NewSynRecv = 12,
    /// <summary>Bound but neither listening nor connected (sock_diag dumps it only when asked; reported as state CLOSE).</summary>
    BoundInactive = 13,
}

/// <summary>
/// A friendly, read-only copy of the kernel's struct tcp_info for one socket (getsockopt TCP_INFO). Times are in
/// microseconds unless named Ms. The kernel copies min(its struct size, our buffer) and says how many bytes it
/// wrote (<see cref="ValidBytes"/>; 280 on Linux 6.18); fields that lie past that length are null (older kernels:
/// RcvWnd needs 6.2+, TotalRto* 6.7+).
/// </summary>
public sealed record TcpInfo
{
    public TcpState State { get; init; }
    /// <summary>tcpi_ca_state: congestion-avoidance state (0 Open, 1 Disorder, 2 CWR, 3 Recovery, 4 Loss).</summary>
    public int CaState { get; init; }
    /// <summary>tcpi_retransmits: retransmissions of the current unacknowledged segment (RTO backoffs in a row).</summary>
    public int Retransmits { get; init; }
    /// <summary>tcpi_options: TCPI_OPT_* bits (1 timestamps, 2 SACK, 4 window scaling, 8 ECN...).</summary>
    public int Options { get; init; }
    public int SndWscale { get; init; }
    public int RcvWscale { get; init; }
    public long RtoMicros { get; init; }
    public long AtoMicros { get; init; }
    public int SndMss { get; init; }
    public int RcvMss { get; init; }
    /// <summary>tcpi_unacked: segments sent and not acknowledged. On a listener: the accept queue's length.</summary>
    public long Unacked { get; init; }
    /// <summary>tcpi_sacked: segments SACKed. On a listener: the accept queue's limit (backlog after the somaxconn clamp).</summary>
    public long Sacked { get; init; }
    public long Lost { get; init; }
    /// <summary>tcpi_retrans: segments retransmitted and not yet acknowledged.</summary>
    public long Retrans { get; init; }
    public long LastDataSentMs { get; init; }
    public long LastAckSentMs { get; init; }
    public long LastDataRecvMs { get; init; }
    public long LastAckRecvMs { get; init; }
    public int Pmtu { get; init; }
    public long RcvSsthresh { get; init; }
    public long RttMicros { get; init; }
    public long RttVarMicros { get; init; }
    public long SndSsthresh { get; init; }
    public long SndCwnd { get; init; }
    public int AdvMss { get; init; }
    public long Reordering { get; init; }
    public long RcvRttMicros { get; init; }
    /// <summary>tcpi_rcv_space: the receive-buffer autotuning's estimate of what the application reads per RTT.</summary>
    public long RcvSpace { get; init; }
    public long TotalRetrans { get; init; }
    public ulong PacingRate { get; init; }
    public ulong BytesAcked { get; init; }
    public ulong BytesReceived { get; init; }
    public long SegsOut { get; init; }
    public long SegsIn { get; init; }
    public long NotsentBytes { get; init; }
    public long MinRttMicros { get; init; }
    public long DataSegsIn { get; init; }
    public long DataSegsOut { get; init; }
    public ulong DeliveryRate { get; init; }
    public ulong BusyTimeMicros { get; init; }
    public ulong RwndLimitedMicros { get; init; }
    public ulong SndbufLimitedMicros { get; init; }
    public long Delivered { get; init; }
    public ulong BytesSent { get; init; }
    public ulong BytesRetrans { get; init; }
    public long RcvOoopack { get; init; }
    /// <summary>tcpi_snd_wnd: the peer's advertised receive window after scaling, in bytes (null before Linux 5.4).</summary>
    public long? SndWnd { get; init; }
    /// <summary>tcpi_rcv_wnd: the receive window this side advertises, after scaling, in bytes (null before Linux 6.2).</summary>
    public long? RcvWnd { get; init; }
    /// <summary>tcpi_rehash (null before Linux 6.2).</summary>
    public long? Rehash { get; init; }
    /// <summary>tcpi_total_rto: RTO timeouts, SYN/SYN-ACK ones included (null before Linux 6.7).</summary>
    public int? TotalRto { get; init; }
    public int? TotalRtoRecoveries { get; init; }
    public long? TotalRtoTimeMs { get; init; }
    /// <summary>How many bytes of struct tcp_info the kernel wrote (getsockopt's optlen).</summary>
    public int ValidBytes { get; init; }

    /// <summary>Reads TCP_INFO from any TCP socket (a lab <see cref="Fd"/>, or a System.Net socket's SafeHandle).</summary>
    public static TcpInfo Read(SafeHandle fd)
    {
        ArgumentNullException.ThrowIfNull(fd);
        var t = ReadRaw(fd, out int n, null);
        bool Has(string field) => n >= (int)Marshal.OffsetOf<tcp_info>(field) + FieldSize(field);
        return new TcpInfo
        {
            State = (TcpState)t.tcpi_state,
            CaState = t.tcpi_ca_state,
            Retransmits = t.tcpi_retransmits,
            Options = t.tcpi_options,
            SndWscale = t.tcpi_snd_rcv_wscale & 0xF,
            RcvWscale = t.tcpi_snd_rcv_wscale >> 4,
            RtoMicros = t.tcpi_rto,
            AtoMicros = t.tcpi_ato,
            SndMss = (int)t.tcpi_snd_mss,
            RcvMss = (int)t.tcpi_rcv_mss,
            Unacked = t.tcpi_unacked,
            Sacked = t.tcpi_sacked,
            Lost = t.tcpi_lost,
            Retrans = t.tcpi_retrans,
            LastDataSentMs = t.tcpi_last_data_sent,
            LastAckSentMs = t.tcpi_last_ack_sent,
            LastDataRecvMs = t.tcpi_last_data_recv,
            LastAckRecvMs = t.tcpi_last_ack_recv,
            Pmtu = (int)t.tcpi_pmtu,
            RcvSsthresh = t.tcpi_rcv_ssthresh,
            RttMicros = t.tcpi_rtt,
            RttVarMicros = t.tcpi_rttvar,
            SndSsthresh = t.tcpi_snd_ssthresh,
            SndCwnd = t.tcpi_snd_cwnd,
            AdvMss = (int)t.tcpi_advmss,
            Reordering = t.tcpi_reordering,
            RcvRttMicros = t.tcpi_rcv_rtt,
            RcvSpace = t.tcpi_rcv_space,
            TotalRetrans = t.tcpi_total_retrans,
            PacingRate = t.tcpi_pacing_rate,
            BytesAcked = t.tcpi_bytes_acked,
            BytesReceived = t.tcpi_bytes_received,
            SegsOut = t.tcpi_segs_out,
            SegsIn = t.tcpi_segs_in,
            NotsentBytes = t.tcpi_notsent_bytes,
            MinRttMicros = t.tcpi_min_rtt,
            DataSegsIn = t.tcpi_data_segs_in,
            DataSegsOut = t.tcpi_data_segs_out,
            DeliveryRate = t.tcpi_delivery_rate,
            BusyTimeMicros = t.tcpi_busy_time,
            RwndLimitedMicros = t.tcpi_rwnd_limited,
            SndbufLimitedMicros = t.tcpi_sndbuf_limited,
            Delivered = t.tcpi_delivered,
            BytesSent = t.tcpi_bytes_sent,
            BytesRetrans = t.tcpi_bytes_retrans,
            RcvOoopack = t.tcpi_rcv_ooopack,
            SndWnd = Has(nameof(tcp_info.tcpi_snd_wnd)) ? t.tcpi_snd_wnd : null,
            RcvWnd = Has(nameof(tcp_info.tcpi_rcv_wnd)) ? t.tcpi_rcv_wnd : null,
            Rehash = Has(nameof(tcp_info.tcpi_rehash)) ? t.tcpi_rehash : null,
            TotalRto = Has(nameof(tcp_info.tcpi_total_rto)) ? t.tcpi_total_rto : null,
            TotalRtoRecoveries = Has(nameof(tcp_info.tcpi_total_rto_recoveries)) ? t.tcpi_total_rto_recoveries : null,
            TotalRtoTimeMs = Has(nameof(tcp_info.tcpi_total_rto_time)) ? t.tcpi_total_rto_time : null,
            ValidBytes = n,
        };
    }

    static int FieldSize(string field) => field is nameof(tcp_info.tcpi_total_rto) or nameof(tcp_info.tcpi_total_rto_recoveries) ? 2 : 4;

    /// <summary>
    /// The raw struct, zero past the <paramref name="validBytes"/> the kernel wrote. Throws
    /// <see cref="SyscallException"/> for a socket that is not TCP (ENOPROTOOPT) or a closed fd.
    /// </summary>
    public static unsafe tcp_info ReadRaw(SafeHandle fd, out int validBytes, string? subject = null)
    {
        tcp_info info = default;
        socklen_t len = (uint)sizeof(tcp_info);
        using var b = Sys.Borrow(fd);
        if (LibC.getsockopt(b.Fd, sys_socket.IPPROTO_TCP, netinet_tcp.TCP_INFO, &info, &len) != 0)
            throw Sys.Fail("getsockopt", $"TCP_INFO on {subject ?? $"fd {b.Fd}"}");
        validBytes = (int)(uint)len;
        return info;
    }
}
