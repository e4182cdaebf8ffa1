set terminal pngcairo size 1100,560 font "DejaVu Sans,10" noenhanced
set bmargin 6
set encoding utf8
set grid ytics lc rgb "#dddddd"
set border 3
set tics nomirror
set key outside right top
set style fill solid 0.85 border -1
set boxwidth 0.9
set output "soak-rss.png"
set title "Soak: Envoy resident memory, 2000 rps over 10000 keys (S11)"
set xlabel "seconds"
set ylabel "Envoy VmRSS, MiB"
set yrange [0:*]
set key bottom right
set arrow from 120, graph 0 to 120, graph 1 nohead dt 2 lc rgb "#888888"
plot "soak-rss.dat" using 1:2 skip 1 with linespoints pt 7 ps 0.4 lw 2 title "resident memory (warm-up ends at the dashed line)"
