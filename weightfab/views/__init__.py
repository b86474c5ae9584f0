"""Integration views of the ROM macros: Verilog, LEF, Liberty and SPICE."""
