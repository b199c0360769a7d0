using System.Net;
using System.Text;
using Lab.Peers;
using Lab.Sockets;
using Lab.Tests.Topologies;
using Lab.Http;
using Lab.Topologies;

namespace Lab.Tests.Peers;

/// <summary>nginx and wrk as real peers: the same answer as the lab's servers, the processes asked for, nothing left behind.</summary>
public class NginxTests
{
    static void RequireNginx() => Assert.SkipUnless(Nginx.Installed, "nginx is not installed (apt-get install -y nginx)");

    /// <summary>One whole raw response to GET / (headers and body), read until the server closes.</summary>
    internal static byte[] RawResponse(IPEndPoint server, string method = "GET", string path = "/")
    {
        using var c = Client.Connect(server, TimeSpan.FromSeconds(10));
        c.WriteAll(Encoding.ASCII.GetBytes($"{method} {path} HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n"), TimeSpan.FromSeconds(10));
        var all = new List<byte>();
        var buffer = new byte[4096];
        int n;
        while ((n = c.ReadSome(buffer, TimeSpan.FromSeconds(10))) > 0) all.AddRange(buffer.AsSpan(0, n));
        return all.ToArray();
    }

    [Fact]
    public void AnswersWithTheSameBodyAsTinyHttp()
    {
        RequireNginx();
        using var nginx = Nginx.Start();
        Assert.True(IPAddress.IsLoopback(nginx.LocalEndPoint.Address));
        Assert.NotEqual(0, nginx.LocalEndPoint.Port);
        using var client = new TestClient(nginx.LocalEndPoint);
        for (int i = 0; i < 3; i++)
        {
            var (status, keepAlive, body) = client.Get();
            Assert.Equal(200, status);
            Assert.True(keepAlive);
            Assert.Equal(Encoding.ASCII.GetString(TinyHttp.HelloBody), body);
        }
        var raw = Encoding.ASCII.GetString(RawResponse(nginx.LocalEndPoint));
        Assert.Contains("Content-Type: text/plain\r\n", raw);
        Assert.Contains("Connection: close\r\n", raw);
        Assert.EndsWith("\r\n\r\nHello, world\n", raw);
    }

    [Fact]
    public void PidSaysWhichWorkerAnswered()
    {
        // Chapter 12 counts new connections per nginx worker by /pid: the body is the answering worker's process id.
        RequireNginx();
        using var nginx = Nginx.Start(new NginxOptions { Workers = 2 });
        for (int i = 0; i < 8; i++)
        {
            var text = Encoding.ASCII.GetString(RawResponse(nginx.LocalEndPoint, path: "/pid"));
            Assert.Contains(int.Parse(text.Split("\r\n\r\n")[1]), nginx.WorkerPids);
        }
        // / is unchanged: benchmarks still get TinyHttp's body.
        Assert.EndsWith("Hello, world\n", Encoding.ASCII.GetString(RawResponse(nginx.LocalEndPoint)));
    }

    [Fact]
    public void SendsAsManyBytesPerResponseAsTheLabsServers()
    {
        RequireNginx();
        using var nginx = Nginx.Start();
        using var lab = new SingleThreadLoop(new TopologyOptions());
        lab.Start();
        static string Shape(string r) => System.Text.RegularExpressions.Regex.Replace(r, "\r\n(Server|Date): [^\r]+", "\r\n$1: x");
        foreach (var method in new[] { "GET", "HEAD" })
        {
            var ours = Encoding.ASCII.GetString(RawResponse(lab.LocalEndPoint, method));
            var theirs = Encoding.ASCII.GetString(RawResponse(nginx.LocalEndPoint, method));
            Assert.Equal(theirs.Length, ours.Length);
            // The same headers, in the same order, only the server's name and the date differ; HEAD has no body.
            Assert.Equal(Shape(theirs), Shape(ours));
            Assert.Equal(method == "HEAD", ours.EndsWith("\r\n\r\n"));
        }
    }

    [Theory]
    [InlineData(1, false, false)]
    [InlineData(2, false, true)]
    [InlineData(2, true, false)]
    public void RunsTheWorkersAskedForAndLeavesNothingBehind(int workers, bool reusePort, bool acceptMutex)
    {
        RequireNginx();
        var nginx = Nginx.Start(new NginxOptions { Workers = workers, ReusePort = reusePort, AcceptMutex = acceptMutex, Backlog = 100 });
        var dir = nginx.Config.Split('\n').First(l => l.StartsWith("pid ")).Split(' ')[1].TrimEnd(';');
        dir = Path.GetDirectoryName(dir)!;
        Assert.True(Directory.Exists(dir));
        Assert.Equal(workers, nginx.WorkerPids.Count);
        foreach (var pid in nginx.WorkerPids.Append(nginx.MasterPid))
            Assert.Equal("nginx", File.ReadAllText($"/proc/{pid}/comm").Trim());
        Assert.Contains($"worker_processes {workers};", nginx.Config);
        Assert.Contains($"accept_mutex {(acceptMutex ? "on" : "off")};", nginx.Config);
        Assert.Equal(reusePort, nginx.Config.Contains(" reuseport;"));
        // The kernel's view: one listening socket per worker with reuseport, else one, each with the backlog asked for.
        var queues = Lab.Observe.ListenQueues.ForPort(nginx.LocalEndPoint);
        Assert.Equal(reusePort ? workers : 1, queues.Listeners);
        Assert.Equal(100 * queues.Listeners, queues.AcceptLimit);
        using (var client = new TestClient(nginx.LocalEndPoint)) Assert.Equal(200, client.Get().Status);

        nginx.Dispose();
        nginx.Dispose();
        foreach (var pid in nginx.WorkerPids.Append(nginx.MasterPid))
            Assert.True(Eventually.Holds(() => !IsNginx(pid), TimeSpan.FromSeconds(10)), $"nginx process {pid} is still alive");
        Assert.False(Directory.Exists(dir), dir);
        Assert.Throws<Lab.Sockets.SyscallException>(() => Client.Connect(nginx.LocalEndPoint, TimeSpan.FromSeconds(2)).Dispose());
    }

    [Fact]
    public void RefusesAddressesOutsideTheLab()
    {
        Assert.Throws<ArgumentException>(() => Nginx.Start(new NginxOptions { Address = "8.8.8.8:80" }));
        Assert.Throws<ArgumentException>(() => Nginx.Start(new NginxOptions { Address = "not an address" }));
        Assert.Throws<ArgumentOutOfRangeException>(() => Nginx.Start(new NginxOptions { Workers = 0 }));
    }

    static bool IsNginx(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/comm").Trim() == "nginx"; }
        catch (IOException) { return false; }
    }
}

public class WrkTests
{
    [Fact]
    public void ParsesARealRunAgainstNginx()
    {
        Assert.SkipUnless(Nginx.Installed && Wrk.Installed, "nginx or wrk is not installed (apt-get install -y nginx wrk)");
        using var nginx = Nginx.Start();
        var cpu = nginx.CpuTime;
        foreach (var close in new[] { false, true })
        {
            var r = Wrk.Run(nginx.Url, threads: 1, connections: 4, TimeSpan.FromSeconds(1), close, TestContext.Current.CancellationToken);
            Assert.True(r.Requests > 0, r.Output);
            Assert.True(r.RequestsPerSecond > 0, r.Output);
            Assert.InRange(r.Duration, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(5));
            Assert.True(r.P50 > TimeSpan.Zero && r.P99 >= r.P50, r.Output);
            Assert.Equal(0, r.Errors);
            // wrk's rate is its count over its own duration.
            Assert.InRange(r.RequestsPerSecond, r.Requests / r.Duration.TotalSeconds * 0.95, r.Requests / r.Duration.TotalSeconds * 1.05);
        }
        Assert.True(nginx.CpuTime > cpu, $"nginx's CPU time did not grow over two seconds of wrk: {cpu} then {nginx.CpuTime}");
    }

    [Fact]
    public void ParsesUnitsAndErrors()
    {
        const string text = """
            Running 5s test @ http://127.0.0.1:8080/
              2 threads and 64 connections
              Thread Stats   Avg      Stdev     Max   +/- Stdev
                Latency   731.62us    1.12ms  30.53ms   93.06%
                Req/Sec    43.12k     3.01k   49.56k    72.00%
              Latency Distribution
                 50%  405.00us
                 75%  700.00us
                 90%    1.41ms
                 99%    5.66ms
              429040 requests in 5.00s, 62.60MB read
              Socket errors: connect 0, read 3, write 0, timeout 2
              Non-2xx or 3xx responses: 7
            Requests/sec:  85790.15
            Transfer/sec:     12.52MB
            """;
        var r = Wrk.Parse(text);
        Assert.Equal(429040, r.Requests);
        Assert.Equal(TimeSpan.FromSeconds(5), r.Duration);
        Assert.Equal(85790.15, r.RequestsPerSecond);
        Assert.Equal(TimeSpan.FromMicroseconds(405), r.P50);
        Assert.Equal(TimeSpan.FromMilliseconds(5.66), r.P99);
        Assert.Equal(12, r.Errors);
        Assert.Throws<FormatException>(() => Wrk.Parse("unable to connect to 127.0.0.1:1 Connection refused"));
    }

    [Fact]
    public void RefusesTargetsOutsideTheLabAndUnboundedRuns()
    {
        Assert.Throws<ArgumentException>(() => Wrk.Run("http://8.8.8.8/", 1, 1, TimeSpan.FromSeconds(1), ct: TestContext.Current.CancellationToken));
        Assert.Throws<ArgumentException>(() => Wrk.Run("http://example.com/", 1, 1, TimeSpan.FromSeconds(1), ct: TestContext.Current.CancellationToken));
        Assert.Throws<ArgumentOutOfRangeException>(() => Wrk.Run("http://127.0.0.1:1/", 1, 1, TimeSpan.FromMinutes(11), ct: TestContext.Current.CancellationToken));
        Assert.Throws<ArgumentOutOfRangeException>(() => Wrk.Run("http://127.0.0.1:1/", 2, 1, TimeSpan.FromSeconds(1), ct: TestContext.Current.CancellationToken));
    }
}
