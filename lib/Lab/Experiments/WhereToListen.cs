using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Lab.Charts;
using Lab.Hosts;
using Lab.Sockets;

namespace Lab.Experiments;

/// <summary>What one real connect(2) ended in.</summary>
public enum Reach
{
    /// <summary>The handshake completed: something listens at that address and port.</summary>
    Connected,
    /// <summary>ECONNREFUSED: the address is local to the receiving kernel, but no listener matches; it answered the SYN with RST.</summary>
    Refused,
    /// <summary>No answer at all before the lab's timeout: the SYN (or its answer) was dropped on the way.</summary>
    TimedOut,
    /// <summary>Another error (e.g. ENETUNREACH: no route from that host).</summary>
    Error,
}

/// <summary>Where a client runs: this host (the lab's own namespace) or the other host (the NetHost's namespace).</summary>
public enum Side { ThisHost, OtherHost }

/// <summary>One connect attempt, read from the kernel: who tried, to what, what happened, how long it took.</summary>
/// <param name="Listener">The address the listener was bound to, as `ss -ltn` prints it (e.g. "0.0.0.0:41234").</param>
/// <param name="From">Which host ran connect().</param>
/// <param name="Target">The address:port connect() was given.</param>
/// <param name="Outcome">Connected, refused (RST), timed out, or another error.</param>
/// <param name="Milliseconds">Time from connect() to the outcome.</param>
/// <param name="Detail">The errno name, or the accepted connection's peer as the server saw it.</param>
public sealed record ConnectAttempt(string Listener, Side From, string Target, Reach Outcome, double Milliseconds, string Detail);

/// <summary>A target a client tries: a label for the table ("127.0.0.1"), the host it is tried from, and the address.</summary>
public sealed record ReachTarget(string Label, Side From, IPAddress Address);

/// <summary>
/// Chapter 01's experiment: open a listener on one kind of address, try it from this host and from another host
/// (a network namespace joined by a veth pair), and record what each real connect(2) did.
/// </summary>
public static class WhereToListen
{
    /// <summary>The default connect timeout: long enough for any answer on a veth or loopback (well under 1 ms), short
    /// enough that a dropped SYN costs little. The kernel's first SYN retransmission comes after 1 s, so a 400 ms
    /// timeout sees exactly one SYN.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMilliseconds(400);

    /// <summary>
    /// The five places a client can aim at: from this host, 127.0.0.1, [::1] and the veth address; from the other host,
    /// the veth address (across the wire) and 127.0.0.1 (which, there, is the other host's own loopback).
    /// </summary>
    public static IReadOnlyList<ReachTarget> Targets(NetHost host) =>
    [
        new("this host → 127.0.0.1", Side.ThisHost, IPAddress.Loopback),
        new("this host → [::1]", Side.ThisHost, IPAddress.IPv6Loopback),
        new($"this host → {host.HostAddress}", Side.ThisHost, host.HostAddress),
        new($"other host → {host.HostAddress}", Side.OtherHost, host.HostAddress),
        new("other host → 127.0.0.1", Side.OtherHost, IPAddress.Loopback),
    ];

    /// <summary>
    /// One connect to <paramref name="target"/>:<paramref name="port"/> from <paramref name="from"/>, bounded by
    /// <paramref name="timeout"/>. If it connects and <paramref name="listener"/> is given, the connection is accepted and
    /// the peer address the server saw goes into <see cref="ConnectAttempt.Detail"/> (e.g. ::ffff:127.0.0.1 on a
    /// dual-stack listener).
    /// </summary>
    public static ConnectAttempt Try(NetHost host, Side from, IPAddress target, int port, Listener? listener = null,
        TimeSpan? timeout = null, string? listenerLabel = null)
    {
        LabAddresses.Ensure(target, "connect target");
        var wait = timeout ?? DefaultTimeout;
        var ep = new IPEndPoint(target, port);
        var (outcome, ms, detail) = from == Side.OtherHost
            ? host.Run(() => ConnectOnce(ep, wait, listener))
            : ConnectOnce(ep, wait, listener);
        return new ConnectAttempt(listenerLabel ?? (listener is null ? "?" : Endpoints.Format(listener.LocalEndPoint)), from, Endpoints.Format(ep), outcome, ms, detail);
    }

    static (Reach, double, string) ConnectOnce(IPEndPoint ep, TimeSpan timeout, Listener? listener)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            using var c = Client.Connect(ep, timeout);
            var ms = clock.Elapsed.TotalMilliseconds;
            var detail = "handshake done";
            if (listener != null && listener.Accept(TimeSpan.FromSeconds(2)) is AcceptResult.Accepted a)
            {
                using (a.Connection) detail = "server saw peer " + Endpoints.Format(a.Connection.RemoteEndPoint);
            }
            return (Reach.Connected, ms, detail);
        }
        catch (SyscallException e)
        {
            var ms = clock.Elapsed.TotalMilliseconds;
            return e.ErrnoName switch
            {
                "ECONNREFUSED" => (Reach.Refused, ms, "ECONNREFUSED (RST)"),
                "ETIMEDOUT" => (Reach.TimedOut, ms, "ETIMEDOUT (no answer)"),
                _ => (Reach.Error, ms, e.ErrnoName),
            };
        }
    }

    /// <summary>
    /// Opens a listener on <paramref name="bind"/> (port 0: the kernel picks), tries every target of
    /// <see cref="Targets"/> against it, closes it, and returns the attempts. <paramref name="options"/> sets e.g.
    /// V6Only for an IPv6 listener.
    /// </summary>
    public static IReadOnlyList<ConnectAttempt> Probe(NetHost host, string bind, ListenerOptions? options = null, TimeSpan? timeout = null)
    {
        using var listener = Listener.Open(bind, 16, options);
        var label = Label(bind, options);
        return Targets(host).Select(t => Try(host, t.From, t.Address, listener.Port, listener, timeout, label)).ToList();
    }

    /// <summary>
    /// Probes each bind address in turn (one listener at a time, each on a fresh port) and returns the whole
    /// matrix: one row per listener, one column per target.
    /// </summary>
    public static ReachMatrix Matrix(NetHost host, IEnumerable<(string Bind, ListenerOptions? Options)> listeners, TimeSpan? timeout = null)
    {
        var attempts = new List<ConnectAttempt>();
        foreach (var (bind, options) in listeners) attempts.AddRange(Probe(host, bind, options, timeout));
        return new ReachMatrix(host, attempts);
    }

    /// <summary>The matrix for the usual five listeners: 127.0.0.1, the veth address, 0.0.0.0, :: (dual-stack
    /// default), :: with IPV6_V6ONLY, and ::1.</summary>
    public static ReachMatrix Matrix(NetHost host, TimeSpan? timeout = null) => Matrix(host,
    [
        ("127.0.0.1", null),
        (host.HostAddress.ToString(), null),
        ("0.0.0.0", null),
        ("::", null),
        ("::", new ListenerOptions { V6Only = true }),
        ("::1", null),
    ], timeout);

    /// <summary>
    /// The same port seen from outside: a listener on 0.0.0.0 <em>inside the other host</em>, tried from this host in
    /// three ways: open; a port nobody listens on; open but with an nftables rule in the other host's input hook that
    /// drops SYNs to it (a firewall). The rule is removed before returning.
    /// </summary>
    public static IReadOnlyList<ConnectAttempt> ClosedVersusFiltered(NetHost host, TimeSpan? timeout = null)
    {
        using var listener = host.Run(() => Listener.Open("0.0.0.0:0", 16));
        int unused = host.Run(() => { using var l = Listener.Open("0.0.0.0:0", 1); return l.Port; });
        var list = new List<ConnectAttempt>
        {
            Try(host, Side.ThisHost, host.Address, listener.Port, listener, timeout, "open: listener on 0.0.0.0"),
            Try(host, Side.ThisHost, host.Address, unused, null, timeout, "closed: nothing on the port"),
        };
        using (host.AddRule("input", $"tcp dport {listener.Port} drop"))
            list.Add(Try(host, Side.ThisHost, host.Address, listener.Port, listener, timeout, "filtered: firewall drops the SYN"));
        return list;
    }

    /// <summary>
    /// Connects from this host to <paramref name="target"/> on <paramref name="listener"/>'s port while capturing on the veth and on lo,
    /// and returns how many segments each interface carried: which wire the connection really used.
    /// </summary>
    public static IReadOnlyList<(string Interface, int Segments)> WhichWire(NetHost host, Listener listener, IPAddress target)
    {
        using var veth = Lab.Packets.PacketCapture.Start(listener.Port, host.HostInterface, maxDuration: TimeSpan.FromSeconds(10));
        using var lo = Lab.Packets.PacketCapture.Start(listener.Port, "lo", maxDuration: TimeSpan.FromSeconds(10));
        var attempt = Try(host, Side.ThisHost, target, listener.Port, listener);
        lo.WaitFor(s => s.Kind == "ACK", TimeSpan.FromMilliseconds(500));
        Thread.Sleep(100);
        return [(host.HostInterface + " (the veth)", veth.Segments.Count), ("lo (loopback)", lo.Segments.Count)];
    }

    static string Label(string bind, ListenerOptions? options)
    {
        var ep = Endpoints.Parse(bind);
        var text = ep.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{ep.Address}]" : ep.Address.ToString();
        if (options?.V6Only is { } v6) text += v6 ? " (V6ONLY=1)" : " (V6ONLY=0)";
        return text;
    }

    /// <summary>
    /// Adds <paramref name="address"/>/24 to this side of the veth pair and returns a handle that removes it. It lives
    /// on the lab's own veth, so it also goes when the host is disposed.
    /// </summary>
    public static IDisposable AddAddress(NetHost host, IPAddress address)
    {
        var hostNet = host.HostAddress.GetAddressBytes();
        var b = address.GetAddressBytes();
        if (b.Length != 4 || !b.AsSpan(0, 3).SequenceEqual(hostNet.AsSpan(0, 3)) || address.Equals(host.HostAddress) || address.Equals(host.Address))
            throw new ArgumentException($"{address} must be a spare address in the lab host's subnet {host.Subnet} (not .1 or .2).", nameof(address));
        Command.Check("ip", "addr", "add", $"{address}/24", "dev", host.HostInterface);
        return new AddressHandle(host, address);
    }

    sealed class AddressHandle(NetHost host, IPAddress address) : IDisposable
    {
        int _done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) != 0) return;
            Command.Run("ip", ["addr", "del", $"{address}/24", "dev", host.HostInterface]);
        }
    }
}

/// <summary>Every listener × target connect attempt: a table (<see cref="Attempts"/>), a grid (<see cref="Outcome"/>) and a chart.</summary>
public sealed class ReachMatrix
{
    internal ReachMatrix(NetHost host, IReadOnlyList<ConnectAttempt> attempts)
    {
        Attempts = attempts;
        Listeners = attempts.Select(a => a.Listener).Distinct().ToList();
        Targets = WhereToListen.Targets(host).Select(t => t.Label).ToList();
        _host = host;
    }

    readonly NetHost _host;

    /// <summary>Every attempt, in the order made.</summary>
    public IReadOnlyList<ConnectAttempt> Attempts { get; }
    /// <summary>Row labels: the listeners' bind addresses.</summary>
    public IReadOnlyList<string> Listeners { get; }
    /// <summary>Column labels: who connected to what.</summary>
    public IReadOnlyList<string> Targets { get; }

    /// <summary>The attempt of <paramref name="listener"/> (a row label, e.g. "0.0.0.0") × <paramref name="target"/> (a column label).</summary>
    public ConnectAttempt this[string listener, string target]
    {
        get
        {
            int col = Targets.ToList().IndexOf(target);
            var row = Attempts.Where(a => a.Listener == listener).ToList();
            if (row.Count == 0) throw new KeyNotFoundException($"No listener '{listener}' in the matrix; rows are: {string.Join(", ", Listeners)}.");
            if (col < 0) throw new KeyNotFoundException($"No target '{target}'; columns are: {string.Join(", ", Targets)}.");
            return row[col];
        }
    }

    /// <summary>The outcome of <paramref name="listener"/> × <paramref name="target"/>.</summary>
    public Reach Outcome(string listener, string target) => this[listener, target].Outcome;

    /// <summary>The matrix as rows of text cells, for a table: listener, then one outcome per target.</summary>
    public IReadOnlyList<IDictionary<string, object>> Table() =>
        Listeners.Select(l =>
        {
            var d = new Dictionary<string, object> { ["listener bound to"] = l };
            foreach (var t in Targets) d[t] = Symbol(Outcome(l, t));
            return (IDictionary<string, object>)d;
        }).ToList();

    static string Symbol(Reach r) => r switch
    {
        Reach.Connected => "connected",
        Reach.Refused => "refused (RST)",
        Reach.TimedOut => "timed out",
        _ => "error",
    };

    /// <summary>A heatmap: rows are listeners, columns are targets, colour and text the outcome; hover shows the time.</summary>
    public Figure Chart(string title = "Who can connect to what (each cell one real connect)")
    {
        var rows = Listeners.Reverse().ToList(); // plotly draws row 0 at the bottom
        var z = rows.Select(l => Targets.Select(t => Outcome(l, t) switch { Reach.Connected => 2, Reach.Refused => 0, Reach.TimedOut => 1, _ => 0.5 }).ToArray()).ToArray();
        var text = rows.Select(l => Targets.Select(t => $"{Symbol(Outcome(l, t))}<br>{this[l, t].Milliseconds:0.##} ms").ToArray()).ToArray();
        var trace = new JsonObject
        {
            ["type"] = "heatmap",
            ["z"] = JsonSerializer.SerializeToNode(z),
            ["x"] = JsonSerializer.SerializeToNode(Targets.Select(t => t.Replace(" → ", "<br>→ ")).ToArray()),
            ["y"] = JsonSerializer.SerializeToNode(rows.ToArray()),
            ["text"] = JsonSerializer.SerializeToNode(text),
            ["texttemplate"] = "%{text}",
            ["hoverinfo"] = "x+y+text",
            ["zmin"] = 0,
            ["zmax"] = 2,
            ["showscale"] = false,
            ["xgap"] = 3,
            ["ygap"] = 3,
            ["colorscale"] = JsonNode.Parse("""
                [[0.0, "#f4b6b6"], [0.33, "#f4b6b6"], [0.34, "#f6dc8d"], [0.66, "#f6dc8d"], [0.67, "#a8dba8"], [1.0, "#a8dba8"]]
                """),
        };
        return Figure.Trace(trace).WithSize(760, 400)
            .WithXAxis("client → the address it connects to")
            .WithYAxis("listener bound to")
            .WithTitle(title);
    }

    public override string ToString() => string.Join("\n", Listeners.Select(l => l + ": " + string.Join(", ", Targets.Select(t => $"{t} {Symbol(Outcome(l, t))}"))));
}
