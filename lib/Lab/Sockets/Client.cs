using System.Collections;
using System.Net;
using System.Runtime.InteropServices;
using System.Net.Sockets;
using Lab.Interop;
using Tmds.Linux;
using static Lab.Interop.errno;

namespace Lab.Sockets;

/// <summary>TCP clients on raw sockets: a blocking connect, or a connect left in progress.</summary>
public static unsafe class Client
{
    /// <summary>
    /// Connects and returns a blocking <see cref="Connection"/>. With <paramref name="timeout"/> null this is a plain
    /// blocking connect(2): the kernel waits as long as its SYN retries last (net.ipv4.tcp_syn_retries, about
    /// 2 minutes at the default 6). With a timeout, the connect runs non-blocking and poll(2) waits for it; when the
    /// timeout runs out the socket is closed and <see cref="SyscallException"/> with ETIMEDOUT is thrown.
    /// ECONNREFUSED (nothing listening) throws with a hint.
    /// </summary>
    /// <param name="endpoint">Where to connect, e.g. "127.0.0.1:8080".</param>
    /// <param name="timeout">How long to wait for the handshake; null = the kernel's own limit.</param>
    /// <param name="bindTo">Local address (and port, 0 = any) to bind before connecting, e.g. "127.0.0.2:0".</param>
    public static Connection Connect(string endpoint, TimeSpan? timeout = null, string? bindTo = null)
        => Connect(Endpoints.Parse(endpoint, nameof(endpoint)), timeout, bindTo is null ? null : Endpoints.Parse(bindTo, nameof(bindTo)));

    /// <inheritdoc cref="Connect(string, TimeSpan?, string?)"/>
    public static Connection Connect(IPEndPoint endpoint, TimeSpan? timeout = null, IPEndPoint? bindTo = null)
    {
        if (timeout is { } t && t <= TimeSpan.Zero && t != Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(timeout), t, "The connect timeout must be positive, or null for the kernel's own limit.");
        string subject = Endpoints.Format(endpoint);
        if (timeout is null || timeout == Timeout.InfiniteTimeSpan)
        {
            var fd = Socket(endpoint, bindTo, nonBlocking: false);
            try
            {
                int r;
                int len = SockAddr.From(endpoint, out var sa);
                using (var b = Sys.Borrow(fd))
                    r = LibC.connect(b.Fd, (sockaddr*)&sa, len);
                // connect(2) interrupted by a signal keeps connecting in the background (EINTR): wait for it like EINPROGRESS.
                if (r != 0 && Sys.Errno is int err && err != EINTR) throw Sys.Fail("connect", subject, err, endpoint);
                if (r != 0) WaitConnected(fd, endpoint, -1);
                return new Connection(fd, endpoint, nonBlocking: false);
            }
            catch { fd.Dispose(); throw; }
        }
        var c = BeginConnect(endpoint, bindTo);
        try
        {
            WaitConnected(c.Handle, endpoint, Sys.Milliseconds(timeout.Value));
            c.NonBlocking = false;
            return c;
        }
        catch { c.Dispose(); throw; }
    }

    static void WaitConnected(SafeHandle fd, IPEndPoint endpoint, int timeoutMs)
    {
        string subject = Endpoints.Format(endpoint);
        short ev = Sys.Poll(fd, LibC.POLLOUT, timeoutMs, subject);
        if (ev == 0) throw new SyscallException("connect", ETIMEDOUT, subject, Hints.For("connect", ETIMEDOUT, endpoint) + $" (the lab's timeout of {timeoutMs} ms ran out)");
        int err = Sys.GetInt(fd, sys_socket.SOL_SOCKET, sys_socket.SO_ERROR, $"SO_ERROR after connect to {subject}");
        if (err != 0) throw Sys.Fail("connect", subject, err, endpoint);
    }

    /// <summary>
    /// Starts a non-blocking connect and returns at once: EINPROGRESS is the expected value, so the returned
    /// connection is usually in SYN-SENT (it moves to ESTABLISHED when the handshake completes; watch
    /// <see cref="Connection.State"/> or wait for EPOLLOUT). The connection stays non-blocking. An immediate failure
    /// (ECONNREFUSED on loopback shows up later, in SO_ERROR) throws <see cref="SyscallException"/>.
    /// </summary>
    public static Connection BeginConnect(string endpoint, string? bindTo = null)
        => BeginConnect(Endpoints.Parse(endpoint, nameof(endpoint)), bindTo is null ? null : Endpoints.Parse(bindTo, nameof(bindTo)));

    /// <inheritdoc cref="BeginConnect(string, string?)"/>
    public static Connection BeginConnect(IPEndPoint endpoint, IPEndPoint? bindTo = null)
    {
        var fd = Socket(endpoint, bindTo, nonBlocking: true);
        try
        {
            int len = SockAddr.From(endpoint, out var sa);
            int r;
            using (var b = Sys.Borrow(fd))
                r = LibC.connect(b.Fd, (sockaddr*)&sa, len);
            if (r != 0 && Sys.Errno is int err && err is not (EINPROGRESS or EINTR))
                throw Sys.Fail("connect", Endpoints.Format(endpoint), err, endpoint);
            return new Connection(fd, endpoint, nonBlocking: true);
        }
        catch { fd.Dispose(); throw; }
    }

    static Fd Socket(IPEndPoint endpoint, IPEndPoint? bindTo, bool nonBlocking)
    {
        Endpoints.Validate(endpoint, nameof(endpoint));
        if (endpoint.Port == 0) throw new ArgumentException($"Cannot connect to {Endpoints.Format(endpoint)}: port 0 is not a destination. Use the listener's Port.", nameof(endpoint));
        // The lab's clients only ever reach this machine: loopback, the wildcard (which Linux connects to locally)
        // or a host the lab created. Anything else is refused before a packet leaves.
        if (!endpoint.Address.Equals(IPAddress.Any) && !endpoint.Address.Equals(IPAddress.IPv6Any))
            LabAddresses.Ensure(endpoint.Address, "destination " + Endpoints.Format(endpoint));
        if (bindTo is not null)
        {
            Endpoints.Validate(bindTo, nameof(bindTo));
            if (bindTo.AddressFamily != endpoint.AddressFamily)
                throw new ArgumentException($"bindTo {Endpoints.Format(bindTo)} and endpoint {Endpoints.Format(endpoint)} are different address families; bind an address of the same family.", nameof(bindTo));
        }
        bool v6 = endpoint.AddressFamily == AddressFamily.InterNetworkV6;
        int type = sys_socket.SOCK_STREAM | sys_socket.SOCK_CLOEXEC | (nonBlocking ? sys_socket.SOCK_NONBLOCK : 0);
        int raw = LibC.socket(v6 ? sys_socket.AF_INET6 : sys_socket.AF_INET, type, sys_socket.IPPROTO_TCP);
        if (raw < 0) throw Sys.Fail("socket", v6 ? "AF_INET6, SOCK_STREAM" : "AF_INET, SOCK_STREAM", endpoint);
        var fd = new Fd(raw);
        if (bindTo is null) return fd;
        try
        {
            int len = SockAddr.From(bindTo, out var sa);
            using var b = Sys.Borrow(fd);
            if (LibC.bind(b.Fd, (sockaddr*)&sa, len) != 0) throw Sys.Fail("bind", Endpoints.Format(bindTo), bindTo);
            return fd;
        }
        catch { fd.Dispose(); throw; }
    }
}

/// <summary>Many clients at once, e.g. to fill a listener's queues.</summary>
public static class Clients
{
    /// <summary>
    /// Starts <paramref name="count"/> non-blocking connects to <paramref name="endpoint"/> at once and returns
    /// without waiting for any handshake. If one fails to start, the ones already opened are closed and the error
    /// is thrown.
    /// </summary>
    public static ClientGroup Open(string endpoint, int count, string? bindTo = null)
        => Open(Endpoints.Parse(endpoint, nameof(endpoint)), count, bindTo is null ? null : Endpoints.Parse(bindTo, nameof(bindTo)));

    /// <inheritdoc cref="Open(string, int, string?)"/>
    public static ClientGroup Open(IPEndPoint endpoint, int count, IPEndPoint? bindTo = null)
    {
        if (count is < 0 or > 100_000)
            throw new ArgumentOutOfRangeException(nameof(count), count, "Open between 0 and 100000 clients (each is an fd: check `ulimit -n`).");
        var list = new List<Connection>(count);
        try
        {
            for (int i = 0; i < count; i++) list.Add(Client.BeginConnect(endpoint, bindTo));
            return new ClientGroup(list);
        }
        catch
        {
            foreach (var c in list) c.Dispose();
            throw;
        }
    }
}

/// <summary>A set of client connections opened together; disposing it closes them all.</summary>
public sealed class ClientGroup : IReadOnlyList<Connection>, IDisposable
{
    readonly List<Connection> _connections;

    internal ClientGroup(List<Connection> connections)
    {
        _connections = connections;
        LabResources.Track(this, "ClientGroup");
    }

    public Connection this[int index] => _connections[index];
    public int Count => _connections.Count;
    public IEnumerator<Connection> GetEnumerator() => _connections.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Each client's TCP state now (TCP_INFO); closed clients read as <see cref="TcpState.Close"/>.</summary>
    public IReadOnlyList<TcpState> States() => _connections.Select(c => c.Handle.IsClosed ? TcpState.Close : c.State).ToList();

    /// <summary>How many clients are in each state now, e.g. { Established: 4, SynSent: 4 }.</summary>
    public IReadOnlyDictionary<TcpState, int> CountByState() => States().GroupBy(s => s).OrderBy(g => g.Key).ToDictionary(g => g.Key, g => g.Count());

    /// <summary>How many clients are in <paramref name="state"/> now.</summary>
    public int CountIn(TcpState state) => States().Count(s => s == state);

    /// <summary>Closes every client. Safe to call twice.</summary>
    public void Dispose()
    {
        foreach (var c in _connections) c.Dispose();
        LabResources.Untrack(this);
    }

    public override string ToString() => $"ClientGroup ({Count}: {string.Join(", ", CountByState().Select(kv => $"{kv.Key} {kv.Value}"))})";
}
