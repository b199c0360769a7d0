using Lab.Sockets;
using System.Net;
using System.Collections;
using System.Text;

namespace Lab.Observe;

/// <summary>
/// A snapshot of TCP sockets read from sock_diag, printable like `ss -tan`. The common questions as one call:
/// <see cref="ForPort"/> (both ends of every connection on a port, the listener, its SYN-queue entries) and
/// <see cref="Listeners"/>.
/// </summary>
public sealed class SocketTable : IReadOnlyList<SocketRow>
{
    readonly IReadOnlyList<SocketRow> _rows;

    public SocketTable(IReadOnlyList<SocketRow> rows, DateTime at) { _rows = rows; At = at; }

    /// <summary>When the kernel was read (UTC).</summary>
    public DateTime At { get; }

    /// <summary>Every TCP socket whose local or remote port is <paramref name="port"/>, like
    /// <c>ss -tan '( sport = :P or dport = :P )'</c>; filtered in the kernel by inet_diag bytecode.</summary>
    public static SocketTable ForPort(int port) => Read(new SocketFilter { AnyPort = port });

    /// <summary>
    /// The sockets of one listener: the listener itself, its request sockets, the connections it accepted (local end
    /// is <paramref name="listener"/>) and the clients connecting to it (remote end is <paramref name="listener"/>).
    /// Unlike <see cref="ForPort"/>, other sockets that merely share the port number (another address, or a client
    /// elsewhere whose ephemeral port happens to be the same) are left out. A wildcard listener (0.0.0.0, ::)
    /// matches any local address on its port.
    /// </summary>
    public static SocketTable ForEndPoint(IPEndPoint listener)
    {
        var all = ForPort(listener.Port);
        bool wildcard = listener.Address.Equals(IPAddress.Any) || listener.Address.Equals(IPAddress.IPv6Any);
        bool Same(IPEndPoint e) => e.Port == listener.Port &&
            (wildcard || Normal(e.Address).Equals(Normal(listener.Address)));
        return new SocketTable(all.Where(r => Same(r.Local) || Same(r.Remote)).ToList(), all.At);
    }

    static IPAddress Normal(IPAddress a) => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a;

    /// <summary>Every listening TCP socket, like <c>ss -ltn</c>: RecvQ is the accept queue, SendQ its limit.</summary>
    public static SocketTable Listeners() => Read(SocketFilter.InStates(TcpState.Listen));

    /// <summary>Every TCP socket, like <c>ss -tan</c>.</summary>
    public static SocketTable All() => Read(SocketFilter.All);

    /// <summary>The sockets matching <paramref name="filter"/>.</summary>
    public static SocketTable Read(SocketFilter filter)
    {
        var at = DateTime.UtcNow;
        return new SocketTable(SockDiag.Query(filter), at);
    }

    /// <summary>How many rows are in <paramref name="state"/>.</summary>
    public int CountIn(TcpState state) => _rows.Count(r => r.State == state);

    /// <summary>The rows in <paramref name="state"/>.</summary>
    public IReadOnlyList<SocketRow> InState(TcpState state) => _rows.Where(r => r.State == state).ToList();

    public SocketRow this[int index] => _rows[index];
    public int Count => _rows.Count;
    public IEnumerator<SocketRow> GetEnumerator() => _rows.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>The table as `ss -tan` prints it, header first.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"{"State",-10} {"Recv-Q",6} {"Send-Q",6} {"Local Address:Port",-26} Peer Address:Port");
        foreach (var r in _rows) sb.AppendLine(r.ToString());
        return sb.ToString();
    }
}
