"""A small built-in English sample on which the pruned head's basis is fitted when a model is converted.

Written for this project (no third-party text), over varied topics and lengths.  The fit affects only how much
the pruned head skips, never its results: any basis gives the exact vectors.
"""

from __future__ import annotations

__all__ = ["SAMPLE_TEXTS"]

SAMPLE_TEXTS: tuple[str, ...] = (
    "The lunar module touched down near the south pole of the Moon, where craters in permanent shadow may "
    "hold water ice. Engineers chose the site after years of orbital mapping and radar surveys.",
    "How do I reset the password of my router if I no longer have access to the admin page?",
    "Boundary layer transition on a swept wing depends on the pressure gradient, surface roughness and the "
    "free-stream turbulence level; cross-flow instabilities dominate at high sweep angles.",
    "The library catalogue lists each book by author, title and subject heading, and a union catalogue lets "
    "readers find copies held by other libraries in the region.",
    "Preheat the oven to 200 degrees, roll out the dough, brush it with melted butter and bake the pastry "
    "for twenty minutes until golden.",
    "Inflation rose for the third month in a row as energy prices climbed, and the central bank signalled "
    "that interest rates would stay high until wage growth slows.",
    "symptoms of vitamin d deficiency in adults",
    "The patient presented with a persistent cough, mild fever and shortness of breath; a chest X-ray showed "
    "no consolidation, and the doctor prescribed rest and fluids.",
    "Photosynthesis converts light energy into chemical energy: chlorophyll absorbs red and blue light, water "
    "is split, oxygen is released, and carbon dioxide is fixed into sugars.",
    "A hash table stores key-value pairs in an array of buckets; a good hash function spreads keys evenly so "
    "that lookups take constant time on average.",
    "best hiking trails near the coast with waterfalls",
    "The court ruled that the contract was void because one party had signed it under duress, and ordered "
    "the deposit to be returned with interest.",
    "Volcanic eruptions inject sulphur dioxide into the stratosphere, where it forms aerosols that reflect "
    "sunlight and can cool the climate for a year or two.",
    "The orchestra opened with a symphony by Haydn, followed by a violin concerto and a set of folk songs "
    "arranged for choir and strings.",
    "what is the difference between a virus and a bacterium",
    "Supersonic flow over a wedge produces an oblique shock wave; behind it the pressure, temperature and "
    "density rise while the Mach number falls.",
    "Indexing terms assigned by professional indexers were compared with terms taken automatically from the "
    "titles and abstracts of the same documents.",
    "The football club signed a young striker on a five-year contract after he scored twenty goals in his "
    "first professional season.",
    "Heat transfer from a flat plate in laminar flow follows a simple correlation of the Nusselt number with "
    "the Reynolds and Prandtl numbers.",
    "Migrating birds navigate using the position of the Sun, the pattern of the stars and the Earth's "
    "magnetic field, and they refuel at wetlands along the route.",
    "how long does it take to charge an electric car at home",
    "The museum's new wing displays pottery, coins and tools from a Bronze Age settlement excavated on the "
    "banks of the river.",
    "Vaccines train the immune system to recognise a pathogen without causing the disease, so that memory "
    "cells respond quickly to a later infection.",
    "A relational database stores rows in tables; queries join tables on shared keys and an index on a column "
    "speeds up searches on that column.",
    "The buckling load of a thin cylindrical shell under axial compression is far below the classical value "
    "because of small imperfections in its shape.",
    "cheap flights from london to new york in december",
    "Researchers measured how often users reformulate a search query and found that most sessions end after "
    "two or three attempts.",
    "The novel follows a family of farmers through three generations, from the drought of the thirties to "
    "the arrival of the railway.",
    "Glaciers carve U-shaped valleys, leave moraines of rock and gravel where they stop, and feed rivers with "
    "meltwater during the summer.",
    "The startup raised new funding to expand its delivery service to ten more cities and to hire engineers "
    "for its routing software.",
    "Solar panels convert sunlight into electricity with photovoltaic cells; an inverter turns their direct "
    "current into alternating current for the grid.",
    "why is the sky blue",
    "Flutter is a self-excited oscillation in which aerodynamic forces couple with the elastic modes of a wing "
    "or a control surface, and it can destroy the structure within seconds.",
    "The committee recommended that public libraries lend e-books on the same terms as printed books and "
    "that publishers offer them fair licences.",
    "Earthquakes occur when stress on a fault exceeds the friction that holds its sides together; the energy "
    "travels as seismic waves through the crust.",
    "The translation keeps the rhythm of the original poem but replaces its puns with new ones that work in English.",
    "Regular exercise lowers blood pressure, improves sleep and reduces the risk of heart disease and type 2 diabetes.",
    "To cite a source, give the author, the year, the title, and where it was published, and keep the style "
    "consistent across the bibliography.",
    "A neural network learns by adjusting its weights to reduce a loss; gradients computed by backpropagation "
    "tell each weight which way to move.",
    "The harbour was rebuilt after the storm, with a longer breakwater and new moorings for fishing boats and ferries.",
)
