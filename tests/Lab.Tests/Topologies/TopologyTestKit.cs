using System.Diagnostics;
using System.Net;
using System.Text;
using Lab.Sockets;
using Lab.Http;
using Lab.Topologies;

namespace Lab.Tests.Topologies;

/// <summary>A plain blocking HTTP client for tests: sends a request, reads exactly one response, checks it byte for byte.</summary>
public sealed class TestClient : IDisposable
{
    readonly byte[] _buffer = new byte[4096];
    int _have;
    public Connection Conn { get; }

    public TestClient(IPEndPoint server) { Conn = Client.Connect(server, TimeSpan.FromSeconds(10)); Conn.NoDelay = true; }

    public static readonly string OkBody = "Hello, world\n";

    /// <summary>Sends <paramref name="request"/> and returns (status, keepAlive, body).</summary>
    public (int Status, bool KeepAlive, string Body) Get(string target = "/", bool keepAlive = true)
    {
        Send($"GET {target} HTTP/1.1\r\nHost: t\r\n{(keepAlive ? "" : "Connection: close\r\n")}\r\n");
        return ReadResponse();
    }

    public void Send(string raw)
    {
        var r = Conn.WriteAll(Encoding.ASCII.GetBytes(raw), TimeSpan.FromSeconds(10));
        if (!r.IsData) throw new IOException($"send: {r}");
    }

    public (int Status, bool KeepAlive, string Body) ReadResponse(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            int len = TinyHttp.TryParseResponse(_buffer.AsSpan(0, _have), out int status, out bool ka);
            if (len > 0)
            {
                var text = Encoding.ASCII.GetString(_buffer, 0, len);
                var body = text[(text.IndexOf("\r\n\r\n") + 4)..];
                _buffer.AsSpan(len, _have - len).CopyTo(_buffer);
                _have -= len;
                return (status, ka, body);
            }
            if (len < 0) throw new InvalidDataException("Unparsable response: " + Encoding.ASCII.GetString(_buffer, 0, _have));
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException($"No whole response within the timeout; have {_have} bytes.");
            int n = Conn.ReadSome(_buffer.AsSpan(_have), left);
            if (n == 0) throw new EndOfStreamException($"The server closed after {_have} bytes of a response.");
            _have += n;
        }
    }

    /// <summary>True when the server closed the connection (FIN or reset) within the timeout.</summary>
    public bool SeesClose(TimeSpan? timeout = null)
    {
        try { return Conn.ReadSome(new byte[64], timeout ?? TimeSpan.FromSeconds(10)) == 0; }
        catch (TimeoutException) { return false; }
    }

    public void Dispose() => Conn.Dispose();
}

public static class TopologyKit
{
    public static TopologyOptions Small(int workers = 2) => new() { Workers = workers };

    public static Topology Started(Func<TopologyOptions, Topology> create, TopologyOptions? options = null)
    {
        var t = create(options ?? Small());
        t.Start();
        return t;
    }

    public static Func<TopologyOptions, Topology> Factory(string label) => TopologyCatalog.All.Single(e => e.Label == label).Create;

    public static TheoryData<string> Labels()
    {
        var d = new TheoryData<string>();
        foreach (var (label, _) in TopologyCatalog.All) d.Add(label);
        return d;
    }

    /// <summary>Runs <paramref name="clients"/> threads, each calling <paramref name="body"/>(index); rethrows the first failure; bounded.</summary>
    public static void Parallel(int clients, Action<int> body, TimeSpan? within = null)
    {
        var tasks = Enumerable.Range(0, clients).Select(i => Task.Factory.StartNew(() => body(i), TaskCreationOptions.LongRunning)).ToArray();
        if (!Task.WaitAll(tasks, within ?? TimeSpan.FromSeconds(60)))
            throw new TimeoutException($"Clients did not finish within {(within ?? TimeSpan.FromSeconds(60)).TotalSeconds} s.");
    }

    public static int OpenFds() => Directory.GetFiles("/proc/self/fd").Length;

    /// <summary>Runs a process (curl, wrk) with a 30 s bound; returns (exit code, stdout, stderr).</summary>
    public static (int Code, string Out, string Err) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"{file} did not start");
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(30_000)) { p.Kill(true); throw new TimeoutException($"{file} ran over 30 s"); }
        return (p.ExitCode, so.Result, se.Result);
    }
}
