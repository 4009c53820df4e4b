using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Gateway.Gpio;

/// <summary>The <c>Gpio</c> configuration section.</summary>
public sealed class GpioOptions
{
    public const string Section = "Gpio";

    /// <summary>
    /// <c>auto</c> (libgpiod where /dev/gpiochipN exists, otherwise simulated), <c>libgpiod</c>,
    /// <c>sysfs</c> or <c>simulated</c>.
    /// </summary>
    [RegularExpression("^(auto|libgpiod|sysfs|simulated)$", ErrorMessage = "Gpio:Driver must be auto, libgpiod, sysfs or simulated")]
    public string Driver { get; set; } = "auto";

    /// <summary>The GPIO chip number (/dev/gpiochipN).</summary>
    [Range(0, 64, ErrorMessage = "Gpio:Chip must be between 0 and 64")]
    public int Chip { get; set; }

    /// <summary>Pins the simulated driver offers.</summary>
    [Range(1, 1024, ErrorMessage = "Gpio:SimulatedPinCount must be between 1 and 1024")]
    public int SimulatedPinCount { get; set; } = 64;

    [ValidateEnumeratedItems]
    public List<GpioPinOptions> Pins { get; set; } = [];

    [ValidateEnumeratedItems]
    public List<StatusLedOptions> Leds { get; set; } = [];
}

/// <summary>One pin as a message endpoint: an input publishes <c>gpio/&lt;name&gt;</c>, an output follows <c>gpio/&lt;name&gt;/set</c>.</summary>
public sealed class GpioPinOptions
{
    [Required(ErrorMessage = "Gpio:Pins:N:Name is required")]
    [RegularExpression("^[A-Za-z0-9_-]+$", ErrorMessage = "Gpio:Pins:N:Name may use letters, digits, '_' and '-' only")]
    public string Name { get; set; } = string.Empty;

    [Range(0, 1023, ErrorMessage = "Gpio:Pins:N:Pin must be between 0 and 1023")]
    public int Pin { get; set; }

    [RegularExpression("^(input|output)$", ErrorMessage = "Gpio:Pins:N:Mode must be input or output")]
    public string Mode { get; set; } = "input";

    /// <summary>Inputs: which edges publish an event.</summary>
    [RegularExpression("^(rising|falling|both)$", ErrorMessage = "Gpio:Pins:N:Edge must be rising, falling or both")]
    public string Edge { get; set; } = "both";

    /// <summary>Inputs: bias resistor.</summary>
    [RegularExpression("^(none|up|down)$", ErrorMessage = "Gpio:Pins:N:Pull must be none, up or down")]
    public string Pull { get; set; } = "none";

    /// <summary>Inputs: edges within this many milliseconds of a published one are bounce.</summary>
    [Range(0, 60_000, ErrorMessage = "Gpio:Pins:N:DebounceMs must be between 0 and 60000")]
    public int DebounceMs { get; set; } = 20;
}

/// <summary>An LED that shows a state: <c>gateway</c> (on while running) or <c>uplink:&lt;name&gt;</c>.</summary>
public sealed class StatusLedOptions
{
    [Range(0, 1023, ErrorMessage = "Gpio:Leds:N:Pin must be between 0 and 1023")]
    public int Pin { get; set; }

    [Required(ErrorMessage = "Gpio:Leds:N:Source is required")]
    [RegularExpression("^(gateway|uplink:.+)$", ErrorMessage = "Gpio:Leds:N:Source must be gateway or uplink:<name>")]
    public string Source { get; set; } = "gateway";
}

[OptionsValidator]
internal sealed partial class GpioOptionsValidator : IValidateOptions<GpioOptions>
{
}
