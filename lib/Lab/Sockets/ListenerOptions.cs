namespace Lab.Sockets;

/// <summary>How <see cref="Listener.Open(string, int, ListenerOptions?)"/> sets up its socket, in Kestrel's style.</summary>
public sealed class ListenerOptions
{
    /// <summary>
    /// The listen(2) backlog: how many fully established connections may wait in the accept queue. The kernel lets
    /// one more than this in (the queue is full when its length is <em>greater</em> than the limit). Used when
    /// Open's <c>backlog</c> argument is left at 128. Defaults to 128; the kernel caps it at net.core.somaxconn.
    /// </summary>
    public int Backlog { get; set; } = 128;

    /// <summary>
    /// SO_REUSEADDR: bind even while TIME-WAIT connections from an earlier listener on the port remain (it does not
    /// let two listeners share a port on Linux). Defaults to false.
    /// </summary>
    public bool ReuseAddress { get; set; }

    /// <summary>
    /// SO_REUSEPORT: several listeners (same user) bind the same address and port; the kernel gives each its own
    /// accept queue and spreads new connections between them by a hash of the 4-tuple. Defaults to false.
    /// </summary>
    public bool ReusePort { get; set; }

    /// <summary>
    /// TCP_DEFER_ACCEPT in seconds: the kernel keeps a handshaken connection out of the accept queue until its first
    /// data arrives (or the time, rounded to SYN-ACK retransmissions, runs out). 0 turns it off. Defaults to 0.
    /// </summary>
    public int DeferAcceptSeconds { get; set; }

    /// <summary>
    /// O_NONBLOCK on the listening socket (SOCK_NONBLOCK): accept4 returns EAGAIN instead of waiting, as event loops
    /// need. <see cref="Listener.Accept"/> then waits in poll(2) instead of in accept4. Defaults to false.
    /// </summary>
    public bool NonBlocking { get; set; }

    /// <summary>SO_RCVBUF in bytes, set before listen so accepted sockets inherit it (the kernel doubles it). Defaults to null: the kernel default (net.ipv4.tcp_rmem).</summary>
    public int? ReceiveBufferSize { get; set; }

    /// <summary>SO_SNDBUF in bytes, set before listen so accepted sockets inherit it (the kernel doubles it). Defaults to null: the kernel default (net.ipv4.tcp_wmem).</summary>
    public int? SendBufferSize { get; set; }

    /// <summary>
    /// IPV6_V6ONLY for IPv6 listeners: true accepts only IPv6 clients; false also accepts IPv4 clients on "::"
    /// (they appear as ::ffff:a.b.c.d). Ignored for IPv4. Defaults to null: the kernel default (net.ipv6.bindv6only, usually 0).
    /// </summary>
    public bool? V6Only { get; set; }
}
