"""Liberty (.lib) view of a ROM macro from its ngspice characterisation (signoff/libchar.py).

Units: ns, pF, V, mA, nW; internal power in pJ (pF·V²). Arcs: ``<e>_dout`` rises ``rising_edge``
of ``<e>_clk`` (clock-to-output and transition tables over clock transition x output load); the
address bus and ``en`` have ``setup_rising`` and ``hold_falling`` constraints to the clock (the
wordline is on while the clock is high, so the address is held until the clock falls), each from
its own sweep (libchar.py). Pin capacitances are measured (input charge / VDD). The read energy is
the clock pin's rise internal power; leakage is the cell's.
"""
from __future__ import annotations

import numpy as np

from ..signoff.libchar import MacroTiming

CORNER_PROCESS = {"tt": 1.0, "ss": 1.2, "ff": 0.8}   # nominal process labels of the operating conditions


def _row(values) -> str:
    return ", ".join(f"{v:.5f}" for v in values)


def _table(kind: str, template: str, t: MacroTiming, values: np.ndarray, ind: str) -> list[str]:
    rows = " \\\n".join(f'{ind}    "{_row(r * 1e9)}"' + ("," if i < len(values) - 1 else "") for i, r in enumerate(values))
    return [f"{ind}{kind} ({template}) {{", f'{ind}  index_1 ("{_row(np.array(t.clk_slews) * 1e9)}");',
            f'{ind}  index_2 ("{_row(np.array(t.loads) * 1e12)}");', f"{ind}  values ( \\", f"{rows} );", f"{ind}}}"]


def _constraint(kind: str, clk: str, value: float, ind: str) -> list[str]:
    return [f"{ind}timing () {{", f'{ind}  related_pin : "{clk}";', f"{ind}  timing_type : {kind};",
            f'{ind}  rise_constraint (scalar) {{ values ("{value * 1e9:.5f}"); }}',
            f'{ind}  fall_constraint (scalar) {{ values ("{value * 1e9:.5f}"); }}', f"{ind}}}"]


def write_liberty(cell: str, prefix: str, nbits: int, ndout: int, t: MacroTiming, area_um2: float,
                  vdd: float = 1.8, temp: float = 25.0) -> str:
    lib = f"{cell}_{t.corner}_{str(vdd).replace('.', 'p')}v_{int(temp)}c"
    oc = f"{t.corner}_{str(vdd).replace('.', 'p')}v_{int(temp)}c"
    tpl = f"{cell}_tco"
    clk = f"{prefix}_clk"
    tco = np.nan_to_num(t.tco, nan=float(np.nanmax(t.tco)))
    tr = np.nan_to_num(t.transition, nan=float(np.nanmax(t.transition)))
    addr_cap = max(t.pin_cap.get(f"{prefix}_addr[{i}]", 0.0) for i in range(nbits))
    L = [f"/* {cell}: ROM macro, characterised in ngspice with the SKY130 {t.corner} models on the netlist",
         f"   extracted from the layout; {vdd} V, {temp} C; clock period {t.period * 1e9:g} ns. */",
         f"library ({lib}) {{", "  technology (cmos);", "  delay_model : table_lookup;", '  time_unit : "1ns";',
         '  voltage_unit : "1V";', '  current_unit : "1mA";', '  pulling_resistance_unit : "1kohm";',
         '  leakage_power_unit : "1nW";', "  capacitive_load_unit (1, pf);",
         f"  nom_process : {CORNER_PROCESS[t.corner]};", f"  nom_voltage : {vdd};", f"  nom_temperature : {temp};",
         f"  operating_conditions ({oc}) {{ process : {CORNER_PROCESS[t.corner]}; voltage : {vdd}; temperature : {temp}; }}",
         f"  default_operating_conditions : {oc};"]
    for edge in ("rise", "fall"):
        L += [f"  input_threshold_pct_{edge} : 50;", f"  output_threshold_pct_{edge} : 50;",
              f"  slew_lower_threshold_pct_{edge} : 10;", f"  slew_upper_threshold_pct_{edge} : 90;"]
    L += ["  slew_derate_from_library : 1.0;", f"  default_max_transition : {max(t.clk_slews) * 1e9:.3f};",
          "  default_input_pin_cap : 0.0;", "  default_output_pin_cap : 0.0;", "  default_inout_pin_cap : 0.0;",
          f"  lu_table_template ({tpl}) {{", "    variable_1 : input_net_transition;",
          "    variable_2 : total_output_net_capacitance;",
          f'    index_1 ("{_row(np.array(t.clk_slews) * 1e9)}");', f'    index_2 ("{_row(np.array(t.loads) * 1e12)}");', "  }"]
    for name, width in ((f"{prefix}_addr", nbits), (f"{prefix}_dout", ndout)):
        L += [f"  type ({name}_t) {{", "    base_type : array;", "    data_type : bit;", f"    bit_width : {width};",
              f"    bit_from : {width - 1};", "    bit_to : 0;", "    downto : true;", "  }"]
    L += [f"  cell ({cell}) {{", f"    area : {area_um2:.3f};", "    dont_touch : true;", "    dont_use : true;",
          "    interface_timing : true;", f"    cell_leakage_power : {t.leakage * 1e9:.4f};",
          f"    pin ({clk}) {{", "      direction : input;", "      clock : true;",
          f"      capacitance : {t.pin_cap.get(clk, 0.0) * 1e12:.5f};", "      internal_power () {",
          f'        rise_power (scalar) {{ values ("{t.energy * 1e12:.5f}"); }}',
          '        fall_power (scalar) { values ("0.0"); }', "      }", "    }",
          f"    pin ({prefix}_en) {{", "      direction : input;",
          f"      capacitance : {t.pin_cap.get(prefix + '_en', 0.0) * 1e12:.5f};"]
    L += _constraint("setup_rising", clk, t.en_setup, "      ") + _constraint("hold_falling", clk, t.en_hold, "      ")
    L += ["    }", f"    bus ({prefix}_addr) {{", f"      bus_type : {prefix}_addr_t;", "      direction : input;",
          f"      capacitance : {addr_cap * 1e12:.5f};"]
    L += _constraint("setup_rising", clk, t.setup, "      ") + _constraint("hold_falling", clk, t.hold, "      ")
    L += ["    }", f"    bus ({prefix}_dout) {{", f"      bus_type : {prefix}_dout_t;", "      direction : output;",
          f"      max_capacitance : {max(t.loads) * 1e12:.4f};", "      timing () {", f'        related_pin : "{clk}";',
          "        timing_type : rising_edge;"]
    L += _table("cell_rise", tpl, t, tco, "        ") + _table("rise_transition", tpl, t, tr, "        ")
    L += ["      }", "    }", "  }", "}", ""]
    return "\n".join(L)
