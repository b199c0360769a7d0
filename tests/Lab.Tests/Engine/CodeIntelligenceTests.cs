namespace Lab.Tests.Engine;

[Collection(nameof(EngineCollection))]
public class CodeIntelligenceTests
{
    [Fact]
    public async Task CompletionSeesEarlierCellsAndMembers()
    {
        await using var h = new EngineHarness();
        await h.RunOk(EngineHarness.LabReference);
        await h.RunOk("var backlogDepth = 3;");
        var locals = await h.Engine.CompleteAsync("backl", 5, TestContext.Current.CancellationToken);
        var c = Assert.Single(locals, x => x.Text == "backlogDepth");
        Assert.Equal(0, c.Start);
        Assert.Equal(5, c.End);
        var members = await h.Engine.CompleteAsync("Console.WriteL", 14, TestContext.Current.CancellationToken);
        Assert.Contains(members, x => x.Text == "WriteLine");
        var lab = await h.Engine.CompleteAsync("Lab.LabResources.", 17, TestContext.Current.CancellationToken);
        Assert.Contains(lab, x => x.Text == "Track");
    }

    [Fact]
    public async Task InspectionGivesSignatureAndDocs()
    {
        await using var h = new EngineHarness();
        await h.RunOk(EngineHarness.LabReference);
        var code = "Lab.LabResources.Track(null!)";
        var info = await h.Engine.InspectAsync(code, code.IndexOf("Track") + 2, TestContext.Current.CancellationToken);
        Assert.NotNull(info);
        Assert.Equal("void LabResources.Track(IDisposable resource, string? what = null)", info!.Signature);
        Assert.Contains("Registers a resource the lab started", info.Documentation);
    }
}
