using Lab.Sockets;
using System.Net.Sockets;

namespace Lab.Observe;

/// <summary>
/// Which TCP sockets a <see cref="SockDiag"/> query returns. Each condition is applied in the kernel (idiag_states,
/// the request's port fields, an inet_diag bytecode filter) so a query on a busy host copies only what matches.
/// </summary>
public sealed record SocketFilter
{
    /// <summary>States to include. Defaults to null: every state `ss -tan` shows.</summary>
    public IReadOnlySet<TcpState>? States { get; init; }

    /// <summary>Only sockets whose local port is this. Defaults to null (any).</summary>
    public int? LocalPort { get; init; }

    /// <summary>Only sockets whose remote port is this (listeners never match). Defaults to null (any).</summary>
    public int? RemotePort { get; init; }

    /// <summary>Only sockets whose local or remote port is this, like `ss '( sport = :P or dport = :P )'`. Defaults to null.</summary>
    public int? AnyPort { get; init; }

    /// <summary>InterNetwork or InterNetworkV6 only. Defaults to null: both (two dumps, as ss does).</summary>
    public AddressFamily? Family { get; init; }

    /// <summary>Every TCP socket.</summary>
    public static SocketFilter All { get; } = new();

    /// <summary>Sockets in these states.</summary>
    public static SocketFilter InStates(params TcpState[] states) => new() { States = new HashSet<TcpState>(states) };

    internal void Validate()
    {
        foreach (var (name, port) in new[] { ("LocalPort", LocalPort), ("RemotePort", RemotePort), ("AnyPort", AnyPort) })
            if (port is < 0 or > 65535) throw new ArgumentOutOfRangeException(name, port, "a TCP port is 0..65535");
        if (Family is not null and not AddressFamily.InterNetwork and not AddressFamily.InterNetworkV6)
            throw new ArgumentOutOfRangeException(nameof(Family), Family, "TCP sockets are InterNetwork or InterNetworkV6");
    }
}
