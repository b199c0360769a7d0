using Lab.Cli.Book;
using Lab.Display;
using Microsoft.Playwright;

namespace Lab.Tests.Engine;

/// <summary>The fixture book (tests/Lab.Tests/Fixtures/book), built once by the real `lab book` for the tests that read it.</summary>
public sealed class FixtureBook : IAsyncLifetime
{
    public string Root { get; private set; } = "";
    public string Out => Path.Combine(Root, "book");
    /// <summary>`lab book`'s exit code and what it printed.</summary>
    public (int ExitCode, string Output) Build { get; private set; }

    public string Url(string page) => new Uri(Path.Combine(Out, page)).AbsoluteUri;

    public async ValueTask InitializeAsync()
    {
        Root = LabProcess.FixtureTree("book");
        var r = await LabProcess.Run(Root, null, "book", "--notebooks", Path.Combine(Root, "nb"), "--out", Out);
        Build = (r.ExitCode, r.ToString());
    }

    public ValueTask DisposeAsync()
    {
        try { Directory.Delete(Root, true); } catch (IOException) { }
        return ValueTask.CompletedTask;
    }
}

/// <summary>The book as a reader moves around it: plotly.js once, coloured code, outputs that scroll, contents, search.</summary>
[Collection(nameof(EngineCollection))]
public class BookReadingTests(FixtureBook book) : IClassFixture<FixtureBook>
{
    static async Task<(IPlaywright, IBrowser, IPage, List<string>)> OpenAsync()
    {
        var playwright = await Playwright.CreateAsync();
        var browser = await Chromium.LaunchAsync(playwright);
        var page = await browser.NewPageAsync();
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add(e);
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };
        // Offline: anything not from the file system is a request the book must not make.
        await page.RouteAsync(url => !url.StartsWith("file:"), route => { errors.Add("network request: " + route.Request.Url); return route.AbortAsync(); });
        return (playwright, browser, page, errors);
    }

    [Fact]
    public void PlotlyJsIsOneFileBesideThePagesAndNoPageCarriesACopy()
    {
        Assert.True(book.Build.ExitCode == 0, book.Build.Output);
        var plotly = Path.Combine(book.Out, BookBuilder.PlotlyFile);
        Assert.True(File.Exists(plotly), "no " + plotly);
        Assert.Contains(PlotlyJs.Source[..2000], File.ReadAllText(plotly));
        foreach (var html in Directory.GetFiles(book.Out, "*.html"))
        {
            var text = File.ReadAllText(html);
            Assert.True(new FileInfo(html).Length < 200_000, $"{Path.GetFileName(html)} is {new FileInfo(html).Length} bytes: does it inline plotly.js?");
            Assert.DoesNotContain(PlotlyJs.Source[..200], text);
        }
        Assert.Contains($"<script src=\"{BookBuilder.PlotlyFile}\"", File.ReadAllText(Path.Combine(book.Out, "01-fixture.html")));
    }

    [Fact]
    public void AnOutputThatCarriesPlotlyJsInlineLosesItsCopy()
    {
        var fragment = ChartHtml.Fragment(Lab.Charts.Figure.Scatter(new double[] { 1, 2 }, new double[] { 3, 4 }, "q"));
        var stripped = BookBuilder.WithoutInlinePlotlyJs("<p>before</p>\n" + ChartHtml.WithPlotlyJs(fragment) + ChartHtml.WithPlotlyJs(fragment));
        Assert.Equal("<p>before</p>\n" + fragment + fragment, stripped);
        Assert.False(PlotlyJs.IsIn(stripped));
    }

    [Fact]
    public async Task CodeIsColouredAtBuildTimeWithoutAScript()
    {
        var html = File.ReadAllText(Path.Combine(book.Out, "01-fixture.html"));
        Assert.Contains("<span class=\"hl-kw\">var</span> backlog", html);
        Assert.Contains("<span class=\"hl-type\">Figure</span>.<span class=\"hl-fn\">Scatter</span>", html);
        Assert.Contains("<span class=\"hl-kw\">record</span> <span class=\"hl-type\">Row</span>", html);
        Assert.Contains("<span class=\"hl-num\">3</span>", html);
        Assert.Contains("<span class=\"hl-str\">&quot;drawing &lt;chart&gt;&quot;</span>", html);
        // C# in the prose's fenced blocks too, seeing the usings the cells before it made (Lab, for Listener).
        Assert.Contains("<code class=\"language-csharp\"><span class=\"hl-kw\">var</span> listener = <span class=\"hl-type\">Listener</span>.<span class=\"hl-fn\">Open</span>(",
            File.ReadAllText(Path.Combine(book.Out, "02-second.html")));
        var (playwright, browser, page, errors) = await OpenAsync();
        using var _ = playwright;
        await using var __ = browser;
        await page.GotoAsync(book.Url("01-fixture.html"));
        // What a reader sees: keywords and types in colours of their own, not the text's.
        var colours = await page.EvaluateAsync<string[]>(
            "() => ['pre.code .hl-kw', 'pre.code .hl-type', 'pre.code .hl-str', 'pre.code'].map(s => getComputedStyle(document.querySelector(s)).color)");
        Assert.Equal(4, colours.Distinct().Count());
        Assert.Empty(errors);
    }

    [Theory]
    [InlineData(1280)]
    [InlineData(800)]
    public async Task AWideTableScrollsInsideItsOwnBoxAndNothingIsCutOff(int width)
    {
        var (playwright, browser, page, errors) = await OpenAsync();
        using var _ = playwright;
        await using var __ = browser;
        await page.SetViewportSizeAsync(width, 900);
        await page.GotoAsync(book.Url("02-second.html"));
        var boxes = page.Locator(".out:has(table.lab-table)");
        Assert.Equal(1, await boxes.CountAsync());
        var box = boxes.First;
        var m = await box.EvaluateAsync<Dictionary<string, double>>("""
            b => {
              const r = b.getBoundingClientRect();
              const page = document.documentElement;
              const first = b.querySelector('th').getBoundingClientRect();   // before scrolling: the first column in view
              b.scrollLeft = b.scrollWidth;                    // scroll the box to its right end, as a reader would
              const last = [...b.querySelectorAll('th')].pop().getBoundingClientRect();
              const after = b.getBoundingClientRect();
              return { left: r.left, right: r.right, scrollWidth: b.scrollWidth, clientWidth: b.clientWidth,
                       scrolled: b.scrollLeft, viewport: window.innerWidth, pageScrollWidth: page.scrollWidth,
                       firstLeft: first.left, lastRight: last.right, boxLeft: after.left, boxRight: after.right,
                       scrolls: ['auto', 'scroll'].includes(getComputedStyle(b).overflowX) ? 1 : 0 };
            }
            """);
        var seen = string.Join(", ", m.Select(kv => $"{kv.Key}={kv.Value}"));
        Assert.True(m["scrolls"] == 1, "the output box does not scroll: " + seen);
        Assert.True(m["scrollWidth"] > m["clientWidth"], "the fixture table should be wider than its box at this width: " + seen);
        Assert.True(m["left"] >= 0 && m["right"] <= m["viewport"], "the box is wider than the window: " + seen);
        Assert.True(m["pageScrollWidth"] <= m["viewport"], "the page itself scrolls sideways: " + seen);
        Assert.True(m["scrolled"] > 0, "the box did not scroll: " + seen);
        // Both ends are reachable: the first column starts inside the box, and scrolled to the end, the last column
        // (Payload, wider than the box at 800 px) ends inside it.
        Assert.True(m["firstLeft"] >= m["left"] - 1, "the first column is cut off: " + seen);
        Assert.True(m["lastRight"] <= m["boxRight"] + 1 && m["lastRight"] > m["boxLeft"], "the last column is cut off: " + seen);
        Assert.Equal("Payload", (await page.Locator(".out table.lab-table th").Last.InnerTextAsync()).Trim());
        Assert.Empty(errors);
    }

    [Fact]
    public async Task EachPageHasContentsFromItsHeadingsThatMoveToThem()
    {
        var (playwright, browser, page, errors) = await OpenAsync();
        using var _ = playwright;
        await using var __ = browser;
        await page.GotoAsync(book.Url("01-fixture.html"));
        Assert.Equal(new[] { "A value", "A chart" }, await page.Locator("nav.toc a").AllInnerTextsAsync());
        await page.Locator("nav.toc a", new() { HasText = "A chart" }).ClickAsync();
        Assert.EndsWith("01-fixture.html#a-chart", page.Url);
        Assert.Equal("A chart", await page.Locator("#a-chart").InnerTextAsync());
        await page.GotoAsync(book.Url("02-second.html"));
        Assert.Equal(new[] { "When the SYN queue is full", "Recap" }, await page.Locator("nav.toc a").AllInnerTextsAsync());
        Assert.Empty(errors);
    }

    [Fact]
    public async Task SearchFindsATermInAnotherChapterAndFollowsTheResultThere()
    {
        Assert.True(File.Exists(Path.Combine(book.Out, BookSearch.IndexFile)));
        var (playwright, browser, page, errors) = await OpenAsync();
        using var _ = playwright;
        await using var __ = browser;
        await page.GotoAsync(book.Url("index.html"));
        await page.Locator("#search").PressSequentiallyAsync("SYN cookies");
        var hits = page.Locator("#search-results a.hit");
        await hits.First.WaitForAsync(new() { Timeout = 10_000 });
        Assert.Equal(1, await hits.CountAsync());
        Assert.Equal("When the SYN queue is full", await hits.First.InnerTextAsync());
        Assert.Contains("<mark>SYN</mark> <mark>cookies</mark>", await page.Locator("#search-results .snippet").First.InnerHTMLAsync());
        await hits.First.ClickAsync();
        await page.WaitForURLAsync("**/02-second.html#when-the-syn-queue-is-full");
        Assert.True(await page.Locator("#when-the-syn-queue-is-full").IsVisibleAsync());

        // A term nowhere in the prose says so; a term only in code is not prose.
        await page.GotoAsync(book.Url("index.html"));
        await page.Locator("#search").FillAsync("EPOLLEXCLUSIVE");
        Assert.StartsWith("No section mentions", await page.Locator("#search-count").InnerTextAsync());
        await page.Locator("#search").FillAsync("Payload");
        Assert.Equal(0, await page.Locator("#search-results a.hit").CountAsync());
        Assert.Empty(errors);
    }
}
