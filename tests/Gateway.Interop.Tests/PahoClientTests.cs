using MQTTnet;
using static Gateway.Interop.Tests.InteropTools;

namespace Gateway.Interop.Tests;

/// <summary>paho-mqtt for Python (Debian python3-paho-mqtt) against the gateway.</summary>
[Trait("Category", "Interop")]
public sealed class PahoClientTests : IAsyncLifetime
{
    private TestGateway _gateway = null!;

    public async Task InitializeAsync() => _gateway = await TestGateway.StartAsync();

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Theory]
    [InlineData("4")]
    [InlineData("5")]
    public async Task Paho_publishes_and_subscribes_at_every_qos_with_retained_messages(string version)
    {
        await using var paho = ExternalProcess.Start(Python, Args(Script("paho_client.py"), "roundtrip", _gateway.MqttPort, version));

        Assert.True(await paho.WaitForExitAsync() == 0, paho.Output);
        Assert.Contains("RESULT paho/qos0 payload-0 0 False", paho.Output, StringComparison.Ordinal);
        Assert.Contains("RESULT paho/qos1 payload-1 1 False", paho.Output, StringComparison.Ordinal);
        Assert.Contains("RESULT paho/qos2 payload-2 2 False", paho.Output, StringComparison.Ordinal);
        Assert.Contains("RESULT paho/retained kept 1 False", paho.Output, StringComparison.Ordinal);
        Assert.Contains("RETAINED paho/retained kept True", paho.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Paho_will_is_published_when_the_client_dies()
    {
        await using var watcher = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await watcher.SubscribeAsync("paho/wills/#");

        await using var paho = ExternalProcess.Start(Python, Args(Script("paho_client.py"), "will", _gateway.MqttPort, "paho/wills/sensor"));
        await paho.WaitForOutputAsync("READY");

        var will = await watcher.ReceiveAsync();
        Assert.Equal("paho/wills/sensor", will.Topic);
        Assert.Equal("paho-died", will.ConvertPayloadToString());
    }
}
