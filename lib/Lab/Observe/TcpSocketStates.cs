namespace Lab.Observe;

/// <summary>
/// TCP socket states with the kernel's numbers (include/net/tcp_states.h), so a state read from sock_diag or
/// /proc/net/tcp is the enum value as is. <see cref="ToSsName"/> gives the names `ss` prints.
/// </summary>
public enum TcpSocketState : byte
{
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
    /// <summary>Bound but neither listening nor connected (dumped only when asked for; reported as state CLOSE).</summary>
    BoundInactive = 13,
}

public static class TcpSocketStates
{
    /// <summary>The state name `ss` prints: ESTAB, SYN-SENT, SYN-RECV, LISTEN, TIME-WAIT, UNCONN...</summary>
    public static string ToSsName(this TcpSocketState s) => s switch
    {
        TcpSocketState.Established => "ESTAB",
        TcpSocketState.SynSent => "SYN-SENT",
        TcpSocketState.SynRecv or TcpSocketState.NewSynRecv => "SYN-RECV",
        TcpSocketState.FinWait1 => "FIN-WAIT-1",
        TcpSocketState.FinWait2 => "FIN-WAIT-2",
        TcpSocketState.TimeWait => "TIME-WAIT",
        TcpSocketState.Close or TcpSocketState.BoundInactive => "UNCONN",
        TcpSocketState.CloseWait => "CLOSE-WAIT",
        TcpSocketState.LastAck => "LAST-ACK",
        TcpSocketState.Listen => "LISTEN",
        TcpSocketState.Closing => "CLOSING",
        _ => "UNKNOWN",
    };

    /// <summary>The states `ss -tan` shows: every state from ESTAB to SYN-RECV request sockets (not bound-inactive).</summary>
    public static IReadOnlySet<TcpSocketState> All { get; } = new HashSet<TcpSocketState>(
        Enum.GetValues<TcpSocketState>().Where(s => s != TcpSocketState.BoundInactive));

    /// <summary>The idiag_states bit mask for a set of states (bit n = state n).</summary>
    /// <remarks>
    /// Kernel fact (net/ipv4/tcp_diag.c, tcp_diag_dump; inet_diag.c before 6.15): "if (idiag_states &amp; TCPF_SYN_RECV)
    /// idiag_states |= TCPF_NEW_SYN_RECV", so bit 3 alone dumps request sockets too; bit 12 alone dumps only them.
    /// </remarks>
    public static uint ToKernelMask(IEnumerable<TcpSocketState> states)
    {
        uint mask = 0;
        foreach (var s in states) mask |= 1u << (int)s;
        return mask;
    }
}
