using Lab.Sockets;
using System.Net;
using System.Net.Sockets;

namespace Lab.Observe;

/// <summary>
/// One TCP socket as the kernel's sock_diag reports it (the same source `ss` reads).
/// </summary>
/// <param name="State">The socket's state; request sockets (SYN queue entries) are <see cref="TcpState.NewSynRecv"/>.</param>
/// <param name="RecvQ">idiag_rqueue. LISTEN: the accept queue's length (connections waiting for accept()). Otherwise: bytes received and not yet read.</param>
/// <param name="SendQ">idiag_wqueue. LISTEN: the accept queue's limit (min(backlog, somaxconn)). Otherwise: bytes sent and not yet acknowledged.</param>
/// <param name="Local">Local address and port.</param>
/// <param name="Remote">Peer address and port (0.0.0.0:0 or [::]:0 for a listener).</param>
/// <param name="Inode">The socket's inode (as in /proc/PID/fd/N -> socket:[inode]); 0 for request and TIME-WAIT sockets.</param>
/// <param name="Uid">The owner's uid; 0 for request and TIME-WAIT sockets.</param>
/// <param name="Cookie">The kernel's socket cookie (SO_COOKIE): unique for the life of the system.</param>
/// <param name="Interface">idiag_if: the interface index the socket is bound to (0 if not bound to one).</param>
public sealed record SocketRow(
    TcpState State,
    long RecvQ,
    long SendQ,
    IPEndPoint Local,
    IPEndPoint Remote,
    ulong Inode,
    uint Uid,
    ulong Cookie,
    int Interface)
{
    /// <summary>AF_INET or AF_INET6 (an IPv4 client of a dual-stack listener shows as AF_INET6 with a ::ffff: address).</summary>
    public AddressFamily Family => Local.AddressFamily;

    /// <summary>idiag_timer: 0 none, 1 retransmit (SYN-ACK for request sockets), 2 keepalive, 3 TIME-WAIT, 4 zero-window probe.</summary>
    public int Timer { get; init; }

    /// <summary>idiag_retrans: retransmissions so far (SYN-ACKs resent, for request sockets).</summary>
    public int Retransmits { get; init; }

    /// <summary>idiag_expires: when the timer fires.</summary>
    public TimeSpan Expires { get; init; }

    /// <summary>A line shaped like `ss -tan`: State Recv-Q Send-Q Local:Port Peer:Port.</summary>
    public override string ToString() =>
        $"{State.ToSsName(),-10} {RecvQ,6} {SendQ,6} {FormatEndPoint(Local, false),-26} {FormatEndPoint(Remote, true)}";

    /// <summary>An address the way ss prints it: 127.0.0.1:80, [::1]:80, 0.0.0.0:*, [::ffff:127.0.0.1]:80.</summary>
    public static string FormatEndPoint(IPEndPoint ep, bool isPeer)
    {
        string addr = ep.AddressFamily == AddressFamily.InterNetworkV6
            ? "[" + (ep.Address.ScopeId != 0 ? new IPAddress(ep.Address.GetAddressBytes()).ToString() : ep.Address.ToString()) + "]"
            : ep.Address.ToString();
        string port = isPeer && ep.Port == 0 ? "*" : ep.Port.ToString();
        return addr + ":" + port;
    }
}
