using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Lab.Tests.Observe;

/// <summary>
/// The sockets the Observe tests read. Built on System.Net.Sockets for now; the integrator switches these few
/// helpers to the lab's own Listener/Connection (lib/Lab/Sockets) once that lands: nothing else in the tests
/// creates sockets.
/// </summary>
static class TestSockets
{
    const int IPPROTO_TCP = 6, TCP_DEFER_ACCEPT = 9, SOL_SOCKET = 1, SO_COOKIE = 57;

    /// <summary>A listener on loopback with <paramref name="backlog"/>; on IPv6Any it is dual-stack
    /// (.NET sets IPV6_V6ONLY on IPv6 sockets unless DualMode is set before bind).
    /// Its port is one no socket on the machine uses, below the ephemeral range (ip_local_port_range): port 0
    /// would draw from the range other tests' clients also draw from, so a table "for this port" could pick up
    /// another test's client or TIME-WAIT socket that happens to have the same number.</summary>
    public static Socket Listen(int backlog, IPAddress? address = null, int deferAcceptSeconds = 0)
    {
        address ??= IPAddress.Loopback;
        var s = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (address.Equals(IPAddress.IPv6Any)) s.DualMode = true;
            s.Bind(new IPEndPoint(address, UnusedPortBelowEphemeralRange()));
            if (deferAcceptSeconds > 0)
                s.SetRawSocketOption(IPPROTO_TCP, TCP_DEFER_ACCEPT, BitConverter.GetBytes(deferAcceptSeconds));
            s.Listen(backlog);
            return s;
        }
        catch { s.Dispose(); throw; }
    }

    static int UnusedPortBelowEphemeralRange()
    {
        var low = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split('\t', ' ')[0]);
        for (int attempt = 0; attempt < 200; attempt++)
        {
            int port = Random.Shared.Next(Math.Max(1024, low - 12000), low);
            if (Lab.Observe.SocketTable.ForPort(port).Count == 0) return port;
        }
        throw new InvalidOperationException("no unused port below the ephemeral range after 200 tries");
    }

    public static IPEndPoint EndPoint(this Socket s) => (IPEndPoint)s.LocalEndPoint!;
    public static int Port(this Socket s) => s.EndPoint().Port;

    /// <summary>A client whose connect() has been started but not waited for (non-blocking connect).</summary>
    public static Socket StartConnect(IPEndPoint to)
    {
        var c = new Socket(to.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
        try { c.Connect(to); }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress) { }
        catch { c.Dispose(); throw; }
        return c;
    }

    /// <summary>A connected client and the server side accepted from <paramref name="listener"/> (bounded by the OS's connect timeout on loopback).</summary>
    public static (Socket Client, Socket Server) ConnectedPair(Socket listener)
    {
        var c = new Socket(listener.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            c.Connect(listener.EndPoint());
            if (!listener.Poll(TimeSpan.FromSeconds(10), SelectMode.SelectRead)) throw new TimeoutException("accept: nothing within 10 s");
            return (c, listener.Accept());
        }
        catch { c.Dispose(); throw; }
    }

    /// <summary>The kernel's cookie for the socket (SO_COOKIE), the id sock_diag reports.</summary>
    public static ulong Cookie(this Socket s)
    {
        var buf = new byte[8];
        s.GetRawSocketOption(SOL_SOCKET, SO_COOKIE, buf);
        return BitConverter.ToUInt64(buf);
    }

    /// <summary>The socket's inode, from /proc/self/fd/N → "socket:[inode]".</summary>
    public static ulong Inode(this Socket s)
    {
        var target = new FileInfo($"/proc/self/fd/{s.Handle}").LinkTarget ?? throw new InvalidOperationException("no link");
        return ulong.Parse(target["socket:[".Length..^1]);
    }

    public static void DisposeAll(IEnumerable<IDisposable?> items)
    {
        foreach (var i in items) i?.Dispose();
    }
}

/// <summary>Runs the tools people trust (ss, nstat, sysctl, ip) with a bounded wait.</summary>
static class Tool
{
    public static string Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(15)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within 15 s");
        }
        if (!Task.WaitAll([stdout, stderr], TimeSpan.FromSeconds(5))) throw new TimeoutException($"{file}: output not closed");
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {p.ExitCode}: {stderr.Result}");
        return stdout.Result;
    }

    /// <summary>One ss line: State (null when ss hides the column because a single state was asked for), queues, addresses, the rest.</summary>
    public sealed record SsLine(string? State, long RecvQ, long SendQ, string Local, string Peer, string[] Rest);

    public static List<SsLine> Ss(params string[] args)
    {
        var lines = new List<SsLine>();
        foreach (var line in Run("ss", args).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            int i = long.TryParse(f[0], out _) ? 0 : 1;
            lines.Add(new SsLine(i == 0 ? null : f[0], long.Parse(f[i]), long.Parse(f[i + 1]), f[i + 2], f[i + 3], f[(i + 4)..]));
        }
        return lines;
    }

    /// <summary>`nstat -asz`: absolute values of every counter, without touching nstat's history file.</summary>
    public static Dictionary<string, long> Nstat(params string[] names)
    {
        var d = new Dictionary<string, long>();
        foreach (var line in Run("nstat", ["-asz", .. names]).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith('#')) continue;
            var f = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            d[f[0]] = long.Parse(f[1]);
        }
        return d;
    }
}
