using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Lab.Sockets;
using Microsoft.Playwright;

namespace Lab.Tests.Jupyter;

/// <summary>
/// The lab's kernel under a real browser front end: Debian's Jupyter Notebook server (classic, 6.x) with Chromium
/// driven by Playwright. A cell's display is replaced in place (update_display_data), a value shows, and a Plotly chart
/// of a kernel reading is drawn in the page.
/// </summary>
[Collection(nameof(JupyterCollection))]
public class NotebookFrontEndTests(KernelSpecFixture spec)
{
    static string LabDll => Path.Combine(RepoRoot.Path, "artifacts", "bin", "Lab", "debug", "Lab.dll");

    [Fact]
    public async Task JupyterNotebookInChromiumRunsTheCellsAndDrawsTheChart()
    {
        var dir = Directory.CreateTempSubdirectory("lab-frontend-").FullName;
        Process? server = null;
        try
        {
            WriteNotebook(Path.Combine(dir, "frontend.ipynb"),
                $"#r \"{LabDll}\"",
                "var view = display(\"first frame\");\nSystem.Threading.Thread.Sleep(300);\nview.Update(\"second frame\");\n6 * 7",
                "var probe = Lab.Sockets.Listener.Open(\"127.0.0.1:0\", 3);\nvar limit = probe.ReadAcceptQueue().Limit;\nprobe.Dispose();\nLab.Charts.LabCharts.Bars(\"accept queue limit\", \"connections\", new[] { (\"limit\", (double)limit) })");

            int port = FreePort();
            var token = Convert.ToHexString(Guid.NewGuid().ToByteArray()).ToLowerInvariant();
            var psi = new ProcessStartInfo("/usr/bin/python3")
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = dir,
            };
            foreach (var a in new[] { "-m", "notebook", "--no-browser", "--allow-root", "--ip=127.0.0.1", $"--port={port}", "--port-retries=0",
                         $"--NotebookApp.token={token}", $"--notebook-dir={dir}" })
                psi.ArgumentList.Add(a);
            psi.Environment["JUPYTER_PATH"] = spec.JupyterPath;
            psi.Environment["JUPYTER_RUNTIME_DIR"] = Path.Combine(dir, ".runtime");
            psi.Environment["JUPYTER_CONFIG_DIR"] = Path.Combine(dir, ".config");
            psi.Environment["JUPYTER_DATA_DIR"] = Path.Combine(dir, ".data");
            server = Process.Start(psi)!;
            var log = new System.Text.StringBuilder();
            server.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
            server.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
            server.BeginOutputReadLine();
            server.BeginErrorReadLine();
            string Log() { lock (log) return log.ToString(); }

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            var up = Stopwatch.StartNew();
            while (true)
            {
                try { if ((await http.GetAsync($"http://127.0.0.1:{port}/api/status?token={token}", TestContext.Current.CancellationToken)).IsSuccessStatusCode) break; }
                catch (HttpRequestException) { }
                catch (TaskCanceledException) { }
                Assert.False(server.HasExited, "jupyter notebook exited:\n" + Log());
                Assert.True(up.Elapsed < TimeSpan.FromSeconds(60), "jupyter notebook did not answer within 60 s:\n" + Log());
                await Task.Delay(200, TestContext.Current.CancellationToken);
            }

            using var playwright = await Playwright.CreateAsync();
            await using var browser = await Chromium.LaunchAsync(playwright);
            var page = await browser.NewPageAsync();
            var errors = new List<string>();
            page.PageError += (_, e) => errors.Add(e);
            // Nothing but the local server: a front end that needed the internet would fail here, as it would offline.
            await page.RouteAsync(url => !url.StartsWith($"http://127.0.0.1:{port}/"), route => { errors.Add("request off the machine: " + route.Request.Url); return route.AbortAsync(); });

            await page.GotoAsync($"http://127.0.0.1:{port}/notebooks/frontend.ipynb?token={token}");
            await page.WaitForFunctionAsync("() => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected() && Jupyter.notebook.kernel.name === 'lab-csharp'",
                null, new PageWaitForFunctionOptions { Timeout = 60_000 });
            await page.EvaluateAsync("() => Jupyter.notebook.execute_all_cells()");
            try
            {
                await page.WaitForFunctionAsync(
                    "() => { const cs = Jupyter.notebook.get_cells(); const done = cs.every(c => typeof c.input_prompt_number === 'number'); return done && (cs.some(c => c.output_area.outputs.some(o => o.output_type === 'error')) || document.querySelector('#notebook svg.main-svg')); }",
                    null, new PageWaitForFunctionOptions { Timeout = 90_000 });
            }
            catch (TimeoutException)
            {
                var state = await page.EvaluateAsync<string>("() => JSON.stringify(Jupyter.notebook.get_cells().map(c => [c.input_prompt_number, c.output_area ? c.output_area.outputs : []]))");
                throw new Xunit.Sdk.XunitException($"the cells did not finish with a drawn chart in 90 s.\ncells: {state}\npage errors: {string.Join("\n", errors)}\nserver:\n{Log()}");
            }

            var outputs = await page.EvaluateAsync<string>("() => JSON.stringify(Jupyter.notebook.get_cells().map(c => c.output_area ? c.output_area.outputs : []))");
            var cells = JsonNode.Parse(outputs)!.AsArray();
            var second = cells[1]!.ToJsonString();
            Assert.Contains("second frame", second);           // the display was replaced in place...
            Assert.DoesNotContain("first frame", second);      // ...not appended
            Assert.Contains("\"execute_result\"", second);
            Assert.Contains("42", second);
            Assert.DoesNotContain("\"error\"", cells.ToJsonString());
            var drawn = await page.Locator("#notebook .output_area svg.main-svg").CountAsync();
            Assert.True(drawn >= 1, "the chart was not drawn");
            // The bar's height is the kernel's reading: the accept queue limit of a backlog-3 listener.
            var bar = await page.EvaluateAsync<double?>("() => { const g = document.querySelector('#notebook .js-plotly-plot'); return g && g.data ? g.data[0].y[0] : null; }");
            Assert.Equal(3, bar);
            Assert.Empty(errors);
            await page.EvaluateAsync("() => Jupyter.notebook.kernel.kill()");
        }
        finally
        {
            if (server is { HasExited: false })
            {
                server.Kill(entireProcessTree: true);
                server.WaitForExit(10_000);
            }
            server?.Dispose();
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    static int FreePort()
    {
        using var l = Listener.Open("127.0.0.1:0", 1);
        return l.LocalEndPoint.Port;
    }

    static void WriteNotebook(string path, params string[] codeCells)
    {
        var cells = new JsonArray();
        int i = 0;
        foreach (var code in codeCells)
            cells.Add(new JsonObject
            {
                ["cell_type"] = "code", ["id"] = $"cell{i++}", ["metadata"] = new JsonObject(), ["execution_count"] = null,
                ["outputs"] = new JsonArray(), ["source"] = code,
            });
        var nb = new JsonObject
        {
            ["cells"] = cells,
            ["metadata"] = new JsonObject
            {
                ["kernelspec"] = new JsonObject { ["name"] = "lab-csharp", ["display_name"] = "C# (Backend Accept Lab)", ["language"] = "C#" },
                ["language_info"] = new JsonObject { ["name"] = "C#" },
            },
            ["nbformat"] = 4, ["nbformat_minor"] = 5,
        };
        File.WriteAllText(path, nb.ToJsonString());
    }
}
