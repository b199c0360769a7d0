using Lab.Sockets;

namespace Lab.Observe;

/// <summary>What `ss` calls each <see cref="TcpState"/>, and the kernel masks sock_diag filters with.</summary>
public static class TcpSocketStates
{
    /// <summary>The state name `ss` prints: ESTAB, SYN-SENT, SYN-RECV, LISTEN, TIME-WAIT, UNCONN...</summary>
    public static string ToSsName(this TcpState s) => s switch
    {
        TcpState.Established => "ESTAB",
        TcpState.SynSent => "SYN-SENT",
        TcpState.SynRecv or TcpState.NewSynRecv => "SYN-RECV",
        TcpState.FinWait1 => "FIN-WAIT-1",
        TcpState.FinWait2 => "FIN-WAIT-2",
        TcpState.TimeWait => "TIME-WAIT",
        TcpState.Close or TcpState.BoundInactive => "UNCONN",
        TcpState.CloseWait => "CLOSE-WAIT",
        TcpState.LastAck => "LAST-ACK",
        TcpState.Listen => "LISTEN",
        TcpState.Closing => "CLOSING",
        _ => "UNKNOWN",
    };

    /// <summary>The states `ss -tan` shows: every state from ESTAB to SYN-RECV request sockets (not bound-inactive).</summary>
    public static IReadOnlySet<TcpState> All { get; } = new HashSet<TcpState>(
        Enum.GetValues<TcpState>().Where(s => s != TcpState.BoundInactive));

    /// <summary>The idiag_states bit mask for a set of states (bit n = state n).</summary>
    /// <remarks>
    /// Kernel fact (net/ipv4/tcp_diag.c, tcp_diag_dump; inet_diag.c before 6.15): "if (idiag_states &amp; TCPF_SYN_RECV)
    /// idiag_states |= TCPF_NEW_SYN_RECV", so bit 3 alone dumps request sockets too; bit 12 alone dumps only them.
    /// </remarks>
    public static uint ToKernelMask(IEnumerable<TcpState> states)
    {
        uint mask = 0;
        foreach (var s in states) mask |= 1u << (int)s;
        return mask;
    }
}
