using System.Diagnostics;
using System.Text;
using Lab.Http;

namespace Lab.Tests.Http;

public class TinyHttpTests
{
    static (ParseStatus, HttpRequest, int) Parse(string text)
    {
        var s = TinyHttp.TryParse(Encoding.ASCII.GetBytes(text), out var r, out var n);
        return (s, r, n);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: x\r\n\r\n", Route.Hello, 0, true)]
    [InlineData("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", Route.Hello, 0, false)]
    [InlineData("GET / HTTP/1.0\r\n\r\n", Route.Hello, 0, false)]
    [InlineData("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", Route.Hello, 0, true)]
    [InlineData("GET /work?ms=5 HTTP/1.1\r\nHost: x\r\n\r\n", Route.Work, 5, true)]
    [InlineData("GET /sleep?a=1&ms=200 HTTP/1.1\r\nconnection: CLOSE\r\n\r\n", Route.Sleep, 200, false)]
    [InlineData("HEAD /index.html HTTP/1.1\r\nHost: x\r\n\r\n", Route.Hello, 0, true)]
    public void RequestsParse(string text, Route route, int ms, bool keepAlive)
    {
        var (status, req, consumed) = Parse(text);
        Assert.Equal(ParseStatus.Complete, status);
        Assert.Equal(new HttpRequest(route, ms, keepAlive) { Head = text.StartsWith("HEAD ") }, req);
        Assert.Equal(text.Length, consumed);
    }

    [Fact]
    public void HeadGetsTheHeadersOfGetAndNoBody()
    {
        foreach (var keepAlive in new[] { true, false })
        {
            var (_, get, _) = Parse($"GET / HTTP/1.1\r\n{(keepAlive ? "" : "Connection: close\r\n")}\r\n");
            var (_, head, _) = Parse($"HEAD / HTTP/1.1\r\n{(keepAlive ? "" : "Connection: close\r\n")}\r\n");
            Assert.True(head.Head);
            Assert.False(get.Head);
            var getText = Encoding.ASCII.GetString(TinyHttp.Response(get));
            var headText = Encoding.ASCII.GetString(TinyHttp.Response(head));
            Assert.EndsWith("\r\n\r\n", headText);
            Assert.Contains("Content-Length: 13\r\n", headText); // what a GET would carry (RFC 9110 section 8.6)
            Assert.Equal(getText[..(getText.IndexOf("\r\n\r\n") + 4)], headText[..headText.Length]);
        }
    }

    [Fact]
    public void ResponsesCarryTheDateOfThisSecond()
    {
        var (_, get, _) = Parse("GET / HTTP/1.1\r\n\r\n");
        var text = Encoding.ASCII.GetString(TinyHttp.Response(get));
        var date = System.Text.RegularExpressions.Regex.Match(text, "\r\nDate: ([^\r]+)\r\n").Groups[1].Value;
        var parsed = DateTime.ParseExact(date, "R", System.Globalization.CultureInfo.InvariantCulture).ToUniversalTime();
        Assert.InRange(DateTime.UtcNow - parsed, TimeSpan.FromSeconds(-1), TimeSpan.FromSeconds(3));
    }

    [Theory]
    [InlineData("POST / HTTP/1.1\r\n\r\n")]
    [InlineData("GET / HTTP/2\r\n\r\n")]
    [InlineData("GET /work HTTP/1.1\r\n\r\n")]
    [InlineData("GET /work?ms=-1 HTTP/1.1\r\n\r\n")]
    [InlineData("GET /work?ms=99999 HTTP/1.1\r\n\r\n")]
    [InlineData("GET /work?xms=5 HTTP/1.1\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nno colon here\r\n\r\n")]
    public void NonsenseIsInvalid(string text) => Assert.Equal(ParseStatus.Invalid, Parse(text).Item1);

    [Fact]
    public void PartialRequestsWaitForMoreAndPipelinedOnesParseOneAtATime()
    {
        Assert.Equal(ParseStatus.Incomplete, Parse("GET / HTTP/1.1\r\nHost: x\r\n").Item1);
        Assert.Equal(ParseStatus.Invalid, Parse("GET / HTTP/1.1\r\n" + new string('a', TinyHttp.MaxHeaderBytes + 10)).Item1);
        var two = Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\n\r\nGET /work?ms=1 HTTP/1.1\r\n\r\n");
        Assert.Equal(ParseStatus.Complete, TinyHttp.TryParse(two, out var first, out var n));
        Assert.Equal(Route.Hello, first.Route);
        Assert.Equal(ParseStatus.Complete, TinyHttp.TryParse(two.AsSpan(n), out var second, out _));
        Assert.Equal(Route.Work, second.Route);
    }

    [Fact]
    public void ResponsesAndClientRequestsRoundTrip()
    {
        foreach (var keepAlive in new[] { true, false })
        {
            var req = TinyHttp.BuildRequest(Route.Sleep, 7, keepAlive);
            Assert.Equal(ParseStatus.Complete, TinyHttp.TryParse(req, out var parsed, out _));
            Assert.Equal(new HttpRequest(Route.Sleep, 7, keepAlive), parsed);
            var resp = TinyHttp.Response(parsed).ToArray();
            Assert.Equal(resp.Length, TinyHttp.TryParseResponse(resp, out var status, out var ka));
            Assert.Equal(200, status);
            Assert.Equal(keepAlive, ka);
            Assert.EndsWith("Hello, world\n", Encoding.ASCII.GetString(resp));
            Assert.Equal(0, TinyHttp.TryParseResponse(resp.AsSpan(0, resp.Length - 1), out _, out _));
        }
    }

    [Fact]
    public void WorkKeepsTheThreadBusyForRoughlyTheAskedTime()
    {
        var sw = Stopwatch.StartNew();
        TinyHttp.Perform(new HttpRequest(Route.Work, 30, true));
        Assert.InRange(sw.ElapsedMilliseconds, 30, 5000);
    }
}
