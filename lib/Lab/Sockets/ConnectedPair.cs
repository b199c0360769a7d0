namespace Lab.Sockets;

/// <summary>
/// One listener and one connection to it, both ends in this process: <see cref="Client"/> (the connecting side) and
/// <see cref="Server"/> (the accepted side). Buffer sizes are set before the handshake (on the listener, which the
/// accepted socket inherits, and on the client before data flows), so the window scale is chosen for them.
/// </summary>
public sealed class ConnectedPair : IDisposable
{
    public Listener Listener { get; }
    public Connection Client { get; }
    public Connection Server { get; }

    ConnectedPair(Listener l, Connection c, Connection s) { Listener = l; Client = c; Server = s; LabResources.Track(this, "ConnectedPair"); }

    /// <summary>
    /// Opens a listener on 127.0.0.1 (a fresh port), connects to it and accepts. <paramref name="serverReceiveBuffer"/>
    /// and <paramref name="serverSendBuffer"/> are SO_RCVBUF/SO_SNDBUF on the listener (inherited by the accepted
    /// socket), <paramref name="clientSendBuffer"/> is SO_SNDBUF on the client; null keeps the kernel's default
    /// (tcp_rmem/tcp_wmem, autotuned). The kernel doubles what is set.
    /// </summary>
    public static ConnectedPair Open(int? serverReceiveBuffer = null, int? serverSendBuffer = null, int? clientSendBuffer = null)
    {
        var l = Listener.Open("127.0.0.1:0", 8, new ListenerOptions { ReceiveBufferSize = serverReceiveBuffer, SendBufferSize = serverSendBuffer });
        Connection? c = null;
        try
        {
            c = Sockets.Client.Connect(l.LocalEndPoint, TimeSpan.FromSeconds(5));
            if (clientSendBuffer is int snd) c.SendBufferSize = snd;
            if (l.Accept(TimeSpan.FromSeconds(5)) is not AcceptResult.Accepted a)
                throw new TimeoutException("The connection was not accepted within 5 s.");
            return new ConnectedPair(l, c, a.Connection);
        }
        catch
        {
            c?.Dispose();
            l.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Client.Dispose();
        Server.Dispose();
        Listener.Dispose();
        LabResources.Untrack(this);
    }

    public override string ToString() => $"{Client} (accepted as {Server})";
}
