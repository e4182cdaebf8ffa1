set terminal pngcairo size 1100,560 font "DejaVu Sans,10" noenhanced
set bmargin 6
set encoding utf8
set grid ytics lc rgb "#dddddd"
set border 3
set tics nomirror
set key outside right top
set style fill solid 0.85 border -1
set boxwidth 0.9
set output "passthrough.png"
set title "Pass-through throughput vs Envoy without the filter (S4)"
set style data histograms
set style histogram clustered gap 1
set key autotitle columnhead
set ylabel "requests/s (16 connections, median)"
set yrange [0:*]
set xtics rotate by -20 left
plot "passthrough.dat" using 2:xtic(1), '' using 3
