using System.CommandLine;
using System.Text;
using System.Text.RegularExpressions;
using Lab.Cli.Commands;
using Lab.Topologies;
using static Lab.Tests.Topologies.TopologyKit;

namespace Lab.Tests.Topologies;

/// <summary>The clients people trust (curl, wrk) against every topology.</summary>
public class RealClientsTests
{
    public static TheoryData<string> All => Labels();

    [Theory]
    [MemberData(nameof(All))]
    public void CurlAndWrkGetCorrectAnswers(string label)
    {
        using var t = Started(Factory(label));
        var hello = Run("curl", "-s", "--max-time", "10", t.Url);
        Assert.Equal(0, hello.Code);
        Assert.Equal("Hello, world\n", hello.Out);
        var work = Run("curl", "-s", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", t.Url + "work?ms=1");
        Assert.Equal("200", work.Out);
        var bad = Run("curl", "-s", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", t.Url + "work?ms=x");
        Assert.Equal("400", bad.Out);
        var wrk = Run("wrk", "-t1", "-c4", "-d1s", t.Url);
        Assert.Equal(0, wrk.Code);
        Assert.DoesNotContain("Non-2xx", wrk.Out);
        Assert.DoesNotContain("Socket errors", wrk.Out);
        var requests = long.Parse(Regex.Match(wrk.Out, @"(\d+) requests in").Groups[1].Value);
        Assert.True(requests > 0, wrk.Out);
        Assert.True(t.Stop(TimeSpan.FromSeconds(10)).Stopped);
        Assert.True(t.Metrics.RequestsServed >= requests, $"server {t.Metrics.RequestsServed} < wrk {requests}");
        Assert.Empty(t.Failures);
    }
}

/// <summary>lab serve and lab load, invoked in-process through System.CommandLine as the integrator will wire them.</summary>
public class CliCommandTests
{
    internal sealed class LockedWriter : TextWriter
    {
        readonly StringBuilder _sb = new();
        public override Encoding Encoding => Encoding.UTF8;
        public override void Write(char value) { lock (_sb) _sb.Append(value); }
        public override void Write(string? value) { lock (_sb) _sb.Append(value); }
        public override string ToString() { lock (_sb) return _sb.ToString(); }
    }

    static RootCommand Root() => new("lab") { ServeCommand.Create(), LoadCommand.Create() };

    static (int Code, string Out, string Err) Invoke(string line)
    {
        var (o, e) = (new LockedWriter(), new LockedWriter());
        int code = Root().Parse(line).Invoke(new InvocationConfiguration { Output = o, Error = e });
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public async Task ServeRunsATopologyThatLoadCanMeasure()
    {
        var (o, e) = (new LockedWriter(), new LockedWriter());
        var serve = Task.Run(() => Root().Parse("serve nginx --variant epoll-exclusive --workers 2 --port 0 --duration 3")
            .Invoke(new InvocationConfiguration { Output = o, Error = e }));
        Match m = Match.Empty;
        Assert.True(Eventually.Holds(() => (m = Regex.Match(o.ToString(), @"listening on (http://127\.0\.0\.1:\d+/)")).Success, TimeSpan.FromSeconds(10)), o + e.ToString());
        var load = Invoke($"load {m.Groups[1].Value} -c 2 -n 300");
        Assert.True(load.Code == 0, load.Out + load.Err);
        Assert.Contains("300 completed", load.Out);
        Assert.Contains("p99", load.Out);
        Assert.Contains("errors: none", load.Out);
        Assert.True(await serve.CompletesWithin(TimeSpan.FromSeconds(15)));
        Assert.True(await serve == 0, o + e.ToString());
        Assert.Contains("SharedSocketAcceptors/EpollExclusive", o.ToString());
        Assert.Contains("accept queue 0/", o.ToString());
        Assert.Contains("stopped in", o.ToString());
    }

    [Theory]
    [InlineData("serve node --workers 0 --port 0 --duration 1", "Workers = 0")]
    [InlineData("serve apache --port 0 --duration 1", "No topology called 'apache'")]
    [InlineData("serve node --worker-spin 5 --port 0 --duration 1", "--worker-spin applies to request-dispatch only")]
    [InlineData("serve ramcloud --worker-spin 200000 --port 0 --duration 1", "WorkerSpin must be between 0 (sleep at once) and 100 ms")]
    [InlineData("load http://8.8.8.8/ -n 1", "loopback")]
    [InlineData("load 127.0.0.1:1 -c 0 -n 1", "Connections = 0")]
    public void BadArgumentsGiveClearErrors(string args, string says)
    {
        var r = Invoke(args);
        Assert.Equal(2, r.Code);
        Assert.Contains(says, r.Err);
    }
}
