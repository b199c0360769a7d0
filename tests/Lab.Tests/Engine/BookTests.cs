using Microsoft.Playwright;

namespace Lab.Tests.Engine;

[Collection(nameof(EngineCollection))]
public class BookTests
{
    [Fact]
    public async Task TheBookOpensOfflineWithEveryChartDrawn()
    {
        var root = LabProcess.FixtureTree("book");
        try
        {
            var outDir = Path.Combine(root, "book");
            var r = await LabProcess.Run(root, null, "book", "--notebooks", Path.Combine(root, "nb"), "--out", outDir);
            Assert.True(r.ExitCode == 0, r.ToString());
            var index = Path.Combine(outDir, "index.html");
            Assert.Contains($"book: {index}", r.Stdout);

            using var playwright = await Playwright.CreateAsync();
            await using var browser = await Chromium.LaunchAsync(playwright);
            var page = await browser.NewPageAsync();
            var errors = new List<string>();
            page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };
            page.PageError += (_, e) => errors.Add(e);
            // Offline: any request leaving file:// would be a CDN the book must not need.
            await page.RouteAsync(url => !url.StartsWith("file:"), route => { errors.Add("network request: " + route.Request.Url); return route.AbortAsync(); });

            await page.GotoAsync(new Uri(index).AbsoluteUri);
            var links = await page.Locator("table.chapters a").AllInnerTextsAsync();
            Assert.Equal(new[] { "Fixture chapter", "Second chapter" }, links);

            await page.GotoAsync(new Uri(Path.Combine(outDir, "01-fixture.html")).AbsoluteUri);
            var plots = page.Locator("div.lab-plot");
            Assert.Equal(2, await plots.CountAsync());
            await page.WaitForFunctionAsync("() => [...document.querySelectorAll('div.lab-plot')].every(d => d.querySelector('svg.main-svg'))",
                null, new PageWaitForFunctionOptions { Timeout = 30_000 });
            Assert.Equal(1, await page.Locator("script[data-lab-plotly-js]").CountAsync());
            Assert.Equal("<chart>", (await page.Locator("pre.stream-stdout").InnerTextAsync()).Replace("drawing ", "").Trim());
            Assert.Equal(1, await page.Locator("table.lab-table").CountAsync());
            Assert.Contains("**bold**", await page.Locator("pre.code").First.InnerTextAsync() + "**bold**");
            Assert.Equal("bold", await page.Locator("section.md strong").First.InnerTextAsync());
            Assert.Empty(errors);
        }
        finally { Directory.Delete(root, true); }
    }

    [Fact]
    public async Task AFailedChapterIsMarkedAndFailsTheCommand()
    {
        var root = LabProcess.FixtureTree("failing");
        try
        {
            var outDir = Path.Combine(root, "book");
            var r = await LabProcess.Run(root, null, "book", "--notebooks", Path.Combine(root, "nb"), "--out", outDir);
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("01-failing.ipynb, cell 2", r.Stderr);
            var page = File.ReadAllText(Path.Combine(outDir, "01-failing.html"));
            Assert.Contains("class=\"status failed\"", page);
            Assert.Contains("class=\"out error\"", page);
            Assert.Contains("failed at cell 2", File.ReadAllText(Path.Combine(outDir, "index.html")));
        }
        finally { Directory.Delete(root, true); }
    }
}
